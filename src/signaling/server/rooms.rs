//! Rooms in the registry: joining (at most [`RoomId::MAX_MEMBERS`]) and leaving. The
//! calls between members are ordinary calls that carry the room (see `calls.rs`);
//! membership changes are announced with `member_joined` / `member_left`.

use tracing::info;

use super::calls::Refusal;
use super::registry::{Departure, Registry, SessionKey};
use crate::signaling::protocol::{ErrorCode, RoomId, ServerMessage, UserId};

impl Registry {
    /// `join_room`: `me` (on `session`) joins `room`.
    pub(super) fn on_join_room(
        &mut self,
        session: SessionKey,
        me: &UserId,
        room: RoomId,
    ) -> Result<(), Refusal> {
        if let Some(current) = self.call_of.get(me) {
            return Err((
                ErrorCode::AlreadyInCall,
                format!("you are in call {current}; hang up to join a room"),
            ));
        }
        if let Some(current) = self.room_of.get(me) {
            return Err((
                ErrorCode::BadState,
                format!("you are already in room {current}"),
            ));
        }
        let Some(members) = self.join_room(me, &room) else {
            info!(id = %me, %room, "room full");
            return Err((
                ErrorCode::RoomFull,
                format!("room {room} already has {} members", RoomId::MAX_MEMBERS),
            ));
        };
        info!(id = %me, %room, others = members.len(), "joined room");
        self.reply(session, ServerMessage::RoomJoined { room, members });
        Ok(())
    }

    /// `leave_room`: `me` leaves `room`.
    pub(super) fn on_leave_room(&mut self, me: &UserId, room: RoomId) -> Result<(), Refusal> {
        if self.room_of.get(me) != Some(&room) {
            return Err((ErrorCode::NotInRoom, format!("you are not in room {room}")));
        }
        self.leave_room(me, Departure::Left);
        info!(id = %me, %room, "left room");
        Ok(())
    }
}
