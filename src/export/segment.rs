//! Raw-DEFLATE segments that concatenate into one stream.
//!
//! The export compresses each time window on its own, as one *segment*, and uploads it when the
//! window is done, so an interrupted export resumes at the next window and the bundle is
//! assembled at the end without recompressing anything. A segment is raw deflate (no zlib or gzip
//! header) ended by a sync flush: it stops byte-aligned after an empty stored block and never sets
//! BFINAL. Segments placed end to end and followed by [`FINAL_BLOCK`] therefore form one valid
//! deflate stream of the concatenated input, the way pigz compresses in parallel. Each segment
//! keeps its CRC-32 and length, so the ZIP entry's CRC is [`combine`]d from the parts without
//! reading the data again.

use flate2::{Compress, Compression, FlushCompress};

/// An empty final block with fixed Huffman codes (BFINAL = 1, BTYPE = 01, end-of-block code):
/// appended once after the last segment, it ends the deflate stream.
pub const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Compression level of segments: fast (1) — the export must stay near the speed of a plain curl
/// download, and level 1 already shrinks the repetitive export lines several times.
pub const LEVEL: u32 = 1;

/// Output room made before each call into the compressor: large enough that a call is rarely cut
/// short for lack of space, small next to the ~1 MiB the caller buffers before uploading.
const MIN_SPARE: usize = 64 * 1024;
/// Most output room reserved at once, so one large write of compressible data does not reserve
/// its whole length; the loop in `Encoder::run` asks for more when needed.
const MAX_RESERVE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to compress segment data: {source}")]
    Compress { source: flate2::CompressError },
}

impl Error {
    /// Stable short name for metrics labels and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Compress { .. } => "SegmentCompressFailed",
        }
    }
}

/// The CRC-32 and uncompressed length of a segment (or of several, see [`combine`]).
/// `Sums::default()` is the sums of no data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub crc32: u32,
    pub uncompressed: u64,
}

/// Compresses one segment.
pub struct Encoder {
    deflate: Compress,
    hasher: crc32fast::Hasher,
    out: Vec<u8>,
}

impl Encoder {
    /// A new segment compressed at `level` (0–9; higher values are taken as 9).
    pub fn new(level: u32) -> Encoder {
        Encoder {
            // `false`: raw deflate, no zlib header, so segments can be concatenated.
            deflate: Compress::new(Compression::new(level.min(9)), false),
            hasher: crc32fast::Hasher::new(),
            out: Vec::new(),
        }
    }

    /// Compresses `data`; compressed bytes accumulate in an internal buffer (see [`Encoder::take`]).
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.hasher.update(data);
        self.run(data, FlushCompress::None)
    }

    /// Takes the compressed bytes produced so far. The caller streams them out once
    /// [`Encoder::pending`] passes its upload size, so memory stays bounded. The returned `Vec`
    /// converts into `bytes::Bytes` without copying; the encoder starts a new buffer of the same
    /// capacity, so steady-state writes do not grow it again.
    pub fn take(&mut self) -> Vec<u8> {
        let capacity = self.out.capacity();
        std::mem::replace(&mut self.out, Vec::with_capacity(capacity))
    }

    /// Number of compressed bytes waiting in the buffer.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Sync-flushes and returns the last compressed bytes and the segment's sums.
    pub fn finish(mut self) -> Result<(Vec<u8>, Sums), Error> {
        self.run(&[], FlushCompress::Sync)?;
        let sums = Sums {
            crc32: self.hasher.finalize(),
            uncompressed: self.deflate.total_in(),
        };
        Ok((self.out, sums))
    }

    /// Feeds `input` to the compressor until all of it is consumed and, for a flush, until the
    /// compressor leaves output room unused (zlib's signal that the flush is complete).
    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> Result<(), Error> {
        loop {
            // Deflate output exceeds its input by at most a few bytes per 16 KiB block, so room
            // for the input plus MIN_SPARE suffices for inputs up to MAX_RESERVE.
            if self.out.capacity() - self.out.len() < MIN_SPARE {
                self.out.reserve(input.len().min(MAX_RESERVE) + MIN_SPARE);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut self.out, flush)
                .map_err(|source| Error::Compress { source })?;
            // Fits in usize: at most `input.len()` bytes are consumed.
            let consumed = (self.deflate.total_in() - before) as usize;
            input = &input[consumed..];
            let room_left = self.out.len() < self.out.capacity();
            if input.is_empty() && (flush == FlushCompress::None || room_left) {
                return Ok(());
            }
        }
    }
}

/// The CRC-32 and length of the concatenation of `parts`, computed from each part's sums.
pub fn combine(parts: &[Sums]) -> Sums {
    let mut whole = crc32fast::Hasher::new();
    for part in parts {
        whole.combine(&crc32fast::Hasher::new_with_initial_len(
            part.crc32,
            part.uncompressed,
        ));
    }
    Sums {
        crc32: whole.finalize(),
        uncompressed: parts.iter().map(|p| p.uncompressed).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Deterministic pseudo-random bytes (xorshift), incompressible for deflate.
    fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    /// Export-like lines: highly repetitive text.
    fn repetitive_bytes(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(
                format!(
                    "{{\"metric\":{{\"__name__\":\"vm_cpu\",\"host\":\"h{}\"}},\"values\":[{}],\"timestamps\":[{}]}}\n",
                    i % 17,
                    i % 101,
                    1_700_000_000_000 + i * 15_000
                )
                .as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// Compresses `data` as one segment in writes of `write_size`, draining with `take` on the way.
    fn segment(data: &[u8], write_size: usize) -> (Vec<u8>, Sums) {
        let mut encoder = Encoder::new(LEVEL);
        let mut compressed = Vec::new();
        for chunk in data.chunks(write_size.max(1)) {
            encoder.write(chunk).unwrap();
            if encoder.pending() > 32 * 1024 {
                compressed.extend_from_slice(&encoder.take());
            }
        }
        let (tail, sums) = encoder.finish().unwrap();
        compressed.extend_from_slice(&tail);
        (compressed, sums)
    }

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(stream)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn assert_segments_concatenate(parts: &[Vec<u8>], write_size: usize) {
        let mut stream = Vec::new();
        let mut sums = Vec::new();
        for part in parts {
            let (compressed, part_sums) = segment(part, write_size);
            assert_eq!(part_sums.uncompressed, part.len() as u64);
            assert_eq!(part_sums.crc32, crc32fast::hash(part));
            stream.extend_from_slice(&compressed);
            sums.push(part_sums);
        }
        stream.extend_from_slice(&FINAL_BLOCK);
        let whole = parts.concat();
        assert_eq!(inflate(&stream), whole);
        assert_eq!(
            combine(&sums),
            Sums {
                crc32: crc32fast::hash(&whole),
                uncompressed: whole.len() as u64
            }
        );
    }

    #[test]
    fn concatenated_random_segments_inflate_to_the_concatenated_input() {
        let parts: Vec<Vec<u8>> = [300_000, 1, 70_000, 200_003]
            .iter()
            .enumerate()
            .map(|(i, &len)| random_bytes(len, i as u64 + 1))
            .collect();
        assert_segments_concatenate(&parts, 10_007);
    }

    #[test]
    fn one_write_larger_than_the_output_reserve_is_compressed_whole() {
        let parts = [
            random_bytes(3 * MAX_RESERVE + 5, 9),
            repetitive_bytes(5 * MAX_RESERVE),
        ];
        assert_segments_concatenate(&parts, usize::MAX);
    }

    #[test]
    fn concatenated_repetitive_segments_inflate_to_the_concatenated_input() {
        let parts: Vec<Vec<u8>> = [1_000_000, 333, 500_000]
            .iter()
            .map(|&len| repetitive_bytes(len))
            .collect();
        assert_segments_concatenate(&parts, 65_536);
        assert_segments_concatenate(&parts, 997);
    }

    #[test]
    fn repetitive_data_actually_compresses() {
        let data = repetitive_bytes(1_000_000);
        let (compressed, _) = segment(&data, 65_536);
        assert!(compressed.len() < data.len() / 5, "{}", compressed.len());
    }

    #[test]
    fn segments_never_set_bfinal_so_only_the_final_block_ends_the_stream() {
        let (first, _) = segment(b"first window\n", 4);
        let (second, _) = segment(b"second window\n", 4);
        // Sync-flushed: each segment ends with the empty stored block 00 00 ff ff.
        assert_eq!(&first[first.len() - 4..], &[0x00, 0x00, 0xff, 0xff]);
        let joined = [first.as_slice(), second.as_slice()].concat();
        let mut decoder = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(1024);
        let status = decoder
            .decompress_vec(&joined, &mut out, flate2::FlushDecompress::None)
            .unwrap();
        // All data is decodable, yet the stream has not ended...
        assert_eq!(out, b"first window\nsecond window\n");
        assert_ne!(status, flate2::Status::StreamEnd);
        // ...until the final block arrives.
        let status = decoder
            .decompress_vec(&FINAL_BLOCK, &mut out, flate2::FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, flate2::Status::StreamEnd);
    }

    #[test]
    fn an_empty_segment_is_valid_alone_and_between_others() {
        let (empty, sums) = segment(&[], 1);
        assert_eq!(sums, Sums::default());
        assert_eq!(inflate(&[empty.as_slice(), &FINAL_BLOCK].concat()), b"");
        assert_segments_concatenate(&[b"a".to_vec(), Vec::new(), b"b".to_vec()], 1);
    }

    #[test]
    fn a_single_segment_with_the_final_block_inflates() {
        let data = repetitive_bytes(100_000);
        let (compressed, _) = segment(&data, 4096);
        assert_eq!(
            inflate(&[compressed.as_slice(), &FINAL_BLOCK].concat()),
            data
        );
    }

    #[test]
    fn combine_of_nothing_is_the_sums_of_empty_data() {
        assert_eq!(combine(&[]), Sums::default());
        assert_eq!(crc32fast::hash(b""), 0);
    }
}
