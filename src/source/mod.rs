//! Sources: where samples come from (files, microphone, synthetic).
