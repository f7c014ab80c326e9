//! gzip request bodies (`Content-Encoding: gzip`, as Prometheus' exporters, vmagent
//! and Telegraf send them), decoded with a bound and in two passes: the first counts
//! the decoded bytes without keeping them and stops one byte past the decoded limit,
//! the second decodes into a buffer of exactly that size. A small body that expands to
//! gigabytes (a decompression bomb) costs a 64 KiB scratch buffer and the time to
//! inflate up to the limit, then 413; a valid body costs its decoded size, known (and
//! charged to the core's budget) before it is allocated. The price is inflating valid
//! bodies twice, which is cheap beside parsing them.
#![deny(clippy::indexing_slicing)]

use std::io::Read as _;

use super::WireError;

/// The first pass: the size `body` decodes to (one or more concatenated members, as
/// Go's `gzip.Reader` reads them), refused past `decoded_bytes_max`.
pub fn decoded_len(body: &[u8], decoded_bytes_max: usize) -> Result<usize, WireError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(body);
    let mut scratch = vec![0u8; 64 << 10];
    let mut total = 0usize;
    loop {
        let n = decoder
            .read(&mut scratch)
            .map_err(|e| WireError::BadData(format!("gzip decode: {e}")))?;
        if n == 0 {
            return Ok(total);
        }
        total = total.saturating_add(n);
        if total > decoded_bytes_max {
            return Err(WireError::Limit {
                limit: "decoded_body_size",
                message: format!(
                    "gzip body decompresses to more than the limit of {decoded_bytes_max} bytes (8 × limits.max_body_size)"
                ),
            });
        }
    }
}

/// The second pass: decodes `body` into exactly `len` bytes, as [`decoded_len`] found.
pub fn decode(body: &[u8], len: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(len);
    let bound = u64::try_from(len).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(bound)
        .read_to_end(&mut out)
        .map_err(|e| WireError::BadData(format!("gzip decode: {e}")))?;
    if out.len() != len {
        return Err(WireError::BadData(format!(
            "gzip decode: {} bytes where the first pass found {len}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn decode_bounded(body: &[u8], max: usize) -> Result<Vec<u8>, WireError> {
        decode(body, decoded_len(body, max)?)
    }

    #[test]
    fn decodes_within_the_limit_and_refuses_past_it() {
        let body = gzip(b"up 1\n");
        assert_eq!(decode_bounded(&body, 5).unwrap(), b"up 1\n");
        let err = decode_bounded(&body, 4).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "decoded_body_size",
                ..
            }
        ));
        // Two members, as `cat a.gz b.gz` makes.
        let mut two = gzip(b"a 1\n");
        two.extend(gzip(b"b 2\n"));
        assert_eq!(decode_bounded(&two, 100).unwrap(), b"a 1\nb 2\n");
        assert!(matches!(
            decode_bounded(b"not gzip", 100),
            Err(WireError::BadData(_))
        ));
        assert!(matches!(decode(&body, 3), Err(WireError::BadData(_))));
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 1 << 17, "{}", bomb.len());
        let err = decoded_len(&bomb, 1 << 20).unwrap_err();
        assert!(matches!(err, WireError::Limit { .. }));
    }
}
