//! The room screen's grid: where each member's tile goes, and what a tile's title says.
//!
//! One member fills the video area, two sit side by side, three or four share a 2x2
//! grid (the fourth cell stays empty with three). Tiles reflow whenever the number of
//! members or the area changes, since the layout is computed on every draw.

use ratatui::layout::{Constraint, Layout, Rect};

use super::app::Tile;
use crate::call::CallState;

/// The rectangles of `n` tiles in `area`, in tile order; empty for no tile. More than
/// four (a room holds at most four members, three others) still get a 2-column grid.
pub fn tile_areas(area: Rect, n: usize) -> Vec<Rect> {
    match n {
        0 => Vec::new(),
        1 => vec![area],
        2 => Layout::horizontal([Constraint::Ratio(1, 2); 2])
            .split(area)
            .to_vec(),
        n => {
            let rows = n.div_ceil(2) as u32;
            let row_areas =
                Layout::vertical((0..rows).map(|_| Constraint::Ratio(1, rows))).split(area);
            row_areas
                .iter()
                .flat_map(|row| {
                    Layout::horizontal([Constraint::Ratio(1, 2); 2])
                        .split(*row)
                        .to_vec()
                })
                .take(n)
                .collect()
        }
    }
}

/// A tile's title: ` jerry · mic muted · cam off · speaking ` with only what applies.
pub fn tile_title(tile: &Tile) -> String {
    let mut parts = vec![tile.peer.to_string()];
    match tile.state {
        CallState::Connected => {}
        CallState::Reconnecting => parts.push("reconnecting".into()),
        state => parts.push(state.to_string()),
    }
    if tile.peer_media.muted {
        parts.push("mic muted".into());
    }
    if !tile.peer_media.camera {
        parts.push("cam off".into());
    }
    if tile.speaking() {
        parts.push("speaking".into());
    }
    format!(" {} ", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallId, CallStats, MediaState, UserId};

    fn tile(peer: &str) -> Tile {
        Tile {
            call_id: CallId::parse(&format!("c-{peer}")).unwrap(),
            peer: UserId::parse(peer).unwrap(),
            state: CallState::Connected,
            peer_media: MediaState::default(),
            stats: None,
        }
    }

    #[test]
    fn one_fills_two_split_three_and_four_share_a_2x2_grid() {
        let area = Rect::new(0, 0, 100, 40);
        assert!(tile_areas(area, 0).is_empty());
        assert_eq!(tile_areas(area, 1), vec![area]);
        assert_eq!(
            tile_areas(area, 2),
            vec![Rect::new(0, 0, 50, 40), Rect::new(50, 0, 50, 40)]
        );
        let four = tile_areas(area, 4);
        assert_eq!(
            four,
            vec![
                Rect::new(0, 0, 50, 20),
                Rect::new(50, 0, 50, 20),
                Rect::new(0, 20, 50, 20),
                Rect::new(50, 20, 50, 20),
            ]
        );
        assert_eq!(tile_areas(area, 3), four[..3].to_vec());
    }

    #[test]
    fn tiles_never_overlap_or_leave_the_area_at_odd_sizes() {
        for (w, h) in [(1, 1), (3, 2), (81, 23), (200, 61)] {
            let area = Rect::new(2, 1, w, h);
            for n in 1..=4 {
                let tiles = tile_areas(area, n);
                assert_eq!(tiles.len(), n);
                for (i, a) in tiles.iter().enumerate() {
                    assert_eq!(area.intersection(*a), *a, "{w}x{h} n={n}");
                    for b in &tiles[i + 1..] {
                        assert!(a.intersection(*b).is_empty(), "{w}x{h} n={n}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_title_names_the_member_and_says_what_applies() {
        let mut t = tile("jerry");
        assert_eq!(tile_title(&t), " jerry ");
        t.peer_media = MediaState {
            muted: true,
            camera: false,
        };
        t.state = CallState::Connecting;
        assert_eq!(tile_title(&t), " jerry · connecting · mic muted · cam off ");
        t.peer_media = MediaState::default();
        t.state = CallState::Connected;
        t.stats = Some(Box::new(CallStats {
            audio_level_in_dbfs: -22.0,
            ..CallStats::default()
        }));
        assert_eq!(tile_title(&t), " jerry · speaking ");
        t.stats = Some(Box::new(CallStats {
            audio_level_in_dbfs: -70.0,
            ..CallStats::default()
        }));
        assert_eq!(tile_title(&t), " jerry ");
    }
}
