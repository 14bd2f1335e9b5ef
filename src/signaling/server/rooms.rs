//! Rooms on the server: joining (at most [`RoomId::MAX_MEMBERS`]) and leaving. The calls
//! between members are ordinary calls that carry the room (see `calls.rs`); membership
//! changes are announced with `member_joined` / `member_left`.

use tracing::info;

use super::registry::Departure;
use super::session::Session;
use crate::signaling::protocol::{ErrorCode, RoomId, ServerMessage, UserId};

impl Session {
    pub(super) fn on_join_room(&self, me: &UserId, room: RoomId) {
        let mut reg = self.shared.registry();
        if let Some(current) = reg.call_of.get(me) {
            let text = format!("you are in call {current}; hang up to join a room");
            drop(reg);
            return self.error(ErrorCode::AlreadyInCall, text, None);
        }
        if let Some(current) = reg.room_of.get(me) {
            let text = format!("you are already in room {current}");
            drop(reg);
            return self.error(ErrorCode::BadState, text, None);
        }
        let Some(members) = reg.join_room(me, &room) else {
            drop(reg);
            info!(id = %me, %room, "room full");
            return self.error(
                ErrorCode::RoomFull,
                format!("room {room} already has {} members", RoomId::MAX_MEMBERS),
                None,
            );
        };
        drop(reg);
        info!(id = %me, %room, others = members.len(), "joined room");
        self.reply(ServerMessage::RoomJoined { room, members });
    }

    pub(super) fn on_leave_room(&self, me: &UserId, room: RoomId) {
        let mut reg = self.shared.registry();
        if reg.room_of.get(me) != Some(&room) {
            drop(reg);
            return self.error(
                ErrorCode::NotInRoom,
                format!("you are not in room {room}"),
                None,
            );
        }
        reg.leave_room(me, Departure::Left);
        info!(id = %me, %room, "left room");
    }
}
