//! Headless view: events as JSON lines on stdout, commands as lines on stdin.
