//! TFRecord framing: each event is stored as its length, a masked CRC of the length, the
//! data and a masked CRC of the data.

/// Added to every rotated CRC, as TFRecord prescribes.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Why a record could not be split off; the caller adds path and offset.
pub(super) enum RecordFault {
    Truncated,
    Crc(&'static str),
}

/// Appends one TFRecord: length, masked CRC of the length, data, masked CRC of the data.
pub(super) fn frame_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Splits the first TFRecord off `bytes`, checking both CRCs; returns its data and the rest.
pub(super) fn split_record(bytes: &[u8]) -> Result<(&[u8], &[u8]), RecordFault> {
    let (len_bytes, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(RecordFault::Truncated)?;
    let (len_crc, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(RecordFault::Truncated)?;
    if u32::from_le_bytes(*len_crc) != masked_crc(len_bytes) {
        return Err(RecordFault::Crc("length"));
    }
    let len =
        usize::try_from(u64::from_le_bytes(*len_bytes)).map_err(|_| RecordFault::Truncated)?;
    let (data, rest) = rest.split_at_checked(len).ok_or(RecordFault::Truncated)?;
    let (data_crc, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(RecordFault::Truncated)?;
    if u32::from_le_bytes(*data_crc) != masked_crc(data) {
        return Err(RecordFault::Crc("data"));
    }
    Ok((data, rest))
}

/// The CRC32C of `data`, rotated and offset as TFRecord requires, so that a CRC
/// stored inside CRC'd data does not checksum to a trivial value.
pub(super) fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}
