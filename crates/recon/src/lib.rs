//! The native ptychographic solver (ePIE, rPIE) and its reconstruction metrics
#![deny(missing_docs)]
