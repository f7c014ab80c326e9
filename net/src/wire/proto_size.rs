//! What prost will allocate to decode a protobuf message, counted before it does.
//!
//! Protobuf is compact where Rust structs are not: an empty `TimeSeries` is two bytes
//! on the wire and a 48-byte struct in a `Vec`, so 16 MiB of decompressed
//! remote_write body held 1 GiB once decoded (found by the `remote_write` fuzz
//! target's allocation bound). [`struct_bytes`] walks the wire format without
//! allocating, adding each element's struct size for the repeated message fields a
//! schema names, so a decoder can refuse a body whose structs alone pass its limit.
#![deny(clippy::indexing_slicing)]

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

/// A repeated (or optional) length-delimited field of a message: its tag, the bytes one
/// element takes in the decoded struct (its `Vec` slot and whatever it boxes), and the
/// fields of the element worth counting in turn.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) tag: u32,
    pub(crate) elem_bytes: usize,
    pub(crate) inner: &'static [Field],
}

/// The struct bytes decoding `buf` as a message of `schema` allocates, counted until
/// the count passes `budget` (then returned as is: the caller refuses the message).
/// Malformed input ends the count where it breaks; prost then refuses it having
/// decoded no more than was counted.
pub(crate) fn struct_bytes(buf: &[u8], schema: &[Field], budget: usize) -> usize {
    let mut total = 0usize;
    walk(buf, schema, budget, &mut total);
    total
}

/// The most struct bytes one element of `schema` (at any depth) costs. Each element
/// takes at least two bytes on the wire (its key and its length), so a body of `n`
/// bytes costs at most `n / 2` times this.
pub(crate) fn elem_bytes_max(schema: &[Field]) -> usize {
    schema
        .iter()
        .map(|f| f.elem_bytes.max(elem_bytes_max(f.inner)))
        .max()
        .unwrap_or(0)
}

fn walk(mut buf: &[u8], schema: &[Field], budget: usize, total: &mut usize) {
    while !buf.is_empty() && *total <= budget {
        let Ok((tag, wire_type)) = decode_key(&mut buf) else {
            return;
        };
        let field = schema.iter().find(|f| f.tag == tag);
        match (field, wire_type) {
            (Some(field), WireType::LengthDelimited) => {
                let Some((body, rest)) = decode_varint(&mut buf)
                    .ok()
                    .and_then(|len| usize::try_from(len).ok())
                    .and_then(|len| buf.split_at_checked(len))
                else {
                    return;
                };
                *total = total.saturating_add(field.elem_bytes);
                walk(body, field.inner, budget, total);
                buf = rest;
            }
            _ => {
                if skip_field(wire_type, tag, &mut buf, DecodeContext::default()).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INNER: &[Field] = &[Field {
        tag: 1,
        elem_bytes: 10,
        inner: &[],
    }];
    const OUTER: &[Field] = &[Field {
        tag: 1,
        elem_bytes: 100,
        inner: INNER,
    }];

    #[test]
    fn counts_nested_repeated_messages_and_skips_the_rest() {
        // Two outer messages, the second holding three inner ones; a varint field 2 and
        // an unknown length-delimited field 3 are skipped.
        let buf = [
            0x0a, 0x00, // outer {}
            0x0a, 0x08, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x02, 0x10, 0x01, // outer {3 inner}
            0x10, 0x05, // field 2 = 5
            0x1a, 0x01, 0x0a, // field 3, one byte
        ];
        assert_eq!(struct_bytes(&buf, OUTER, usize::MAX), 230);
        // The count stops once past the budget.
        assert_eq!(struct_bytes(&buf, OUTER, 50), 100);
        // Truncated or malformed input counts what came before the break.
        assert_eq!(struct_bytes(&buf[..3], OUTER, usize::MAX), 100);
        assert_eq!(struct_bytes(&[0x0a, 0xff], OUTER, usize::MAX), 0);
        assert_eq!(struct_bytes(&[0x0f], OUTER, usize::MAX), 0);
    }
}
