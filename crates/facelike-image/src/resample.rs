//! dlib's resampling routines, reproduced bit for bit (see `dlib-spec.md` §5.3, §6.2, §6.6).
