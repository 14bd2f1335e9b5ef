//! The call controller: owns one client's call state machine.
