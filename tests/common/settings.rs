//! Media settings for in-process calls: the test pattern, a tone, no speaker, and ICE
//! on 127.0.0.1 only.

use rtc_cli::config::MediaSettings;
use rtc_cli::media::spec::{AudioSinkSpec, AudioSourceSpec, VideoSourceSpec};

/// Synthetic media on loopback at `video_size` (width, height), `fps` and
/// `video_bitrate_kbps`.
pub fn loopback_media(video_size: (u32, u32), fps: u32, video_bitrate_kbps: u32) -> MediaSettings {
    MediaSettings {
        camera: VideoSourceSpec::TestPattern,
        mic: AudioSourceSpec::Tone { hz: 440 },
        speaker: AudioSinkSpec::None,
        video_size,
        fps,
        video_bitrate_kbps,
        audio_bitrate_kbps: 24,
        record_video: None,
        record_audio: None,
        ice_servers: Vec::new(),
        bind: vec![[127, 0, 0, 1].into()],
        ice_transport_policy: Default::default(),
        max_draw_fps: 30,
        render: rtc_cli::ui::video::RenderMode::Auto,
        reconnect_timeout: rtc_cli::config::DEFAULT_RECONNECT_TIMEOUT,
        // In-process calls take no files: nothing is written outside the test's dirs.
        files: rtc_cli::call::peer::files::FilePolicy {
            refuse_all: true,
            ..Default::default()
        },
        ring: false,
        processing: rtc_cli::media::audio::processing::ProcessingSettings::ALL_OFF,
    }
}
