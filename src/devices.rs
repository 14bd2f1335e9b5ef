//! Camera, microphone and speaker enumeration and selection.
