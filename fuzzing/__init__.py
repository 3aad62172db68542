"""`make fuzz`: mutation fuzzing of the envelope parser, the format decoders and the HTTP handler."""
