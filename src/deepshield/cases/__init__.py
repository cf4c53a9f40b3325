"""Cases: abuse reports, the case state machine with deadlines, actions, statements of reasons, appeals,
audit."""
