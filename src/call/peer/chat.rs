//! Text chat over a DataChannel labelled `chat` (reliable and ordered, the defaults of
//! RFC 8831 §6.1): the offerer opens it before its first offer, the answerer takes it
//! from `ondatachannel`. A message is one UTF-8 text message (a DataChannel string,
//! RFC 8831 §8) of at most [`CHAT_MAX_BYTES`]; the web client speaks the same.

use std::sync::Arc;

use tokio::sync::Mutex;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::PeerEvent;
use super::handler::Shared;

/// The label of the chat channel.
pub const CHAT_LABEL: &str = "chat";

/// The largest chat message, in bytes of UTF-8 (the web client's limit too).
pub const CHAT_MAX_BYTES: usize = 4096;

/// Why a chat message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Longer than [`CHAT_MAX_BYTES`].
    #[error("the message is {0} bytes; the limit is {CHAT_MAX_BYTES}")]
    TooLong(usize),
    /// The channel is not open (yet, or any more).
    #[error("no chat with this peer yet")]
    NotOpen,
    /// The channel refused it.
    #[error("the chat channel failed: {0}")]
    Failed(String),
}

/// Checks a message we are about to send or just received against the limit.
///
/// # Errors
/// [`ChatError::TooLong`].
pub fn check_length(text: &str) -> Result<(), ChatError> {
    if text.len() > CHAT_MAX_BYTES {
        Err(ChatError::TooLong(text.len()))
    } else {
        Ok(())
    }
}

/// The chat channel of one PeerConnection, once there is one.
#[derive(Default)]
pub(crate) struct ChatSlot {
    channel: Mutex<Option<Arc<dyn DataChannel>>>,
}

impl ChatSlot {
    /// Takes `channel` as this connection's chat and relays its events as
    /// [`PeerEvent::ChatOpen`] and [`PeerEvent::Chat`] until it closes.
    pub(crate) async fn adopt(&self, channel: Arc<dyn DataChannel>, shared: Arc<Shared>) {
        *self.channel.lock().await = Some(Arc::clone(&channel));
        let relay = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Some(event) = channel.poll().await {
                match event {
                    DataChannelEvent::OnOpen => {
                        // Opening took the peer's acknowledgement over SCTP over DTLS.
                        relay.mark_peer_secured();
                        relay.emit(PeerEvent::ChatOpen);
                    }
                    DataChannelEvent::OnMessage(message) => {
                        relay.emit(received(message.is_string, &message.data));
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        });
        shared.keep(task);
    }

    /// Sends `text` as one string message.
    ///
    /// # Errors
    /// Too long, not open, or the channel failed.
    pub(crate) async fn send(&self, text: &str) -> Result<(), ChatError> {
        check_length(text)?;
        let channel = self
            .channel
            .lock()
            .await
            .clone()
            .ok_or(ChatError::NotOpen)?;
        let open = channel
            .ready_state()
            .await
            .is_ok_and(|s| s == rtc::data_channel::RTCDataChannelState::Open);
        if !open {
            return Err(ChatError::NotOpen);
        }
        channel
            .send_text(text)
            .await
            .map_err(|e| ChatError::Failed(e.to_string()))
    }
}

/// What a received message becomes: the text, or why it was dropped.
fn received(is_string: bool, data: &[u8]) -> PeerEvent {
    if !is_string {
        return PeerEvent::ChatDropped("a binary chat message".into());
    }
    match std::str::from_utf8(data) {
        Ok(text) if check_length(text).is_ok() => PeerEvent::Chat(text.to_owned()),
        Ok(text) => PeerEvent::ChatDropped(format!(
            "a chat message of {} bytes (the limit is {CHAT_MAX_BYTES})",
            text.len()
        )),
        Err(_) => PeerEvent::ChatDropped("a chat message that is not UTF-8".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_up_to_the_limit_arrives_and_anything_else_is_dropped_with_a_reason() {
        let at_limit = "é".repeat(CHAT_MAX_BYTES / 2);
        assert_eq!(
            received(true, at_limit.as_bytes()),
            PeerEvent::Chat(at_limit)
        );
        let over = "x".repeat(CHAT_MAX_BYTES + 1);
        assert!(
            matches!(received(true, over.as_bytes()), PeerEvent::ChatDropped(w) if w.contains("4097 bytes"))
        );
        assert!(
            matches!(received(true, &[0xff, 0xfe]), PeerEvent::ChatDropped(w) if w.contains("UTF-8"))
        );
        assert!(
            matches!(received(false, b"hi"), PeerEvent::ChatDropped(w) if w.contains("binary"))
        );
    }

    #[test]
    fn the_sender_checks_the_length_in_bytes_not_characters() {
        assert_eq!(check_length(&"a".repeat(CHAT_MAX_BYTES)), Ok(()));
        let wide = "€".repeat(CHAT_MAX_BYTES / 3 + 1);
        assert_eq!(check_length(&wide), Err(ChatError::TooLong(wide.len())));
    }
}
