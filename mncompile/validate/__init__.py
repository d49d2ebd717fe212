"""The validate stage: host emulators (`emulate`), accuracy (`accuracy`) and per-layer error (`layers`)."""
