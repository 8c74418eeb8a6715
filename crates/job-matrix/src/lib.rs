//! Phase E: the training job matrix enumerated from the design and the Phase C/D trees
#![deny(missing_docs)]
