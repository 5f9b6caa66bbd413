//! Typed errors of the accounting domain.

use super::message::MessageKind;

/// Why records could not be built or rendered into messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountingError {
    /// A UUID field (VM, volume, IP record) is not a UUID.
    #[error("{field}: {value:?} is not a UUID")]
    InvalidUuid {
        /// Which field (`VMUUID`, `recordId`, ...).
        field: &'static str,
        /// The rejected text.
        value: String,
    },
    /// A site-level value (`SiteName`, `CloudComputeService`, `CloudType`)
    /// that APEL would reject or store altered.
    #[error("{field}: {value:?} {reason}")]
    InvalidSiteValue {
        /// Which APEL field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An accelerator measurement month outside 1..=12.
    #[error("MeasurementMonth: {month} is not a month (1..=12)")]
    InvalidMonth {
        /// The rejected month.
        month: u32,
    },
    /// A flavor's `Accelerator:Number` that is not a whole number of devices.
    #[error("Accelerator:Number: {value:?} is not a whole number of devices")]
    InvalidAcceleratorCount {
        /// The rejected extra-spec value.
        value: String,
    },
    /// The extraction window ends before it starts.
    #[error("extraction window ends ({to}) before it starts ({from})")]
    InvalidWindow {
        /// `extract_from`, RFC 3339.
        from: String,
        /// `extract_to`, RFC 3339.
        to: String,
    },
    /// Batch limits outside what keeps a message valid and below the AMS
    /// size limit.
    #[error("{what} = {value} is outside {min}..={max}")]
    InvalidLimits {
        /// `max_records` or `max_bytes`.
        what: &'static str,
        /// The rejected value.
        value: usize,
        /// Smallest allowed value.
        min: usize,
        /// Largest allowed value.
        max: usize,
    },
    /// One rendered record does not fit into a message of `max_bytes`
    /// (cannot happen with the field caps and the minimum `max_bytes`; kept
    /// so a future field cannot silently produce an oversize message).
    #[error("{kind} record {id} renders to {size} bytes, more than a whole message may hold ({max} bytes)")]
    RecordTooLarge {
        /// Message type.
        kind: MessageKind,
        /// The record's identifier (VM/volume UUID).
        id: String,
        /// Rendered size of the record alone, with the message framing.
        size: usize,
        /// The configured message byte cap.
        max: usize,
    },
}
