"""The voice path: phone-line audio, speech recognition, the call session, TTS."""
