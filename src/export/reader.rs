//! Reading an export bundle file, for the importer and `vctp bundle verify|inspect`.
//!
//! A bundle is a ZIP holding `metrics.jsonl` and `metadata.json` (and a README). Reading goes
//! through the `zip` crate, which checks each entry's CRC-32 when the entry is read to its end,
//! so corruption inside the compressed data surfaces as a read error rather than as wrong lines.
//! [`sha256_file`] checks the whole file against the `.sha256` sidecar written next to the object.

use super::metadata::{METADATA_ENTRY, METRICS_ENTRY};
use ::zip::ZipArchive;
use ::zip::read::ZipFile;
use ::zip::result::ZipError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest entry [`Bundle::read_small`] reads into memory.
const MAX_SMALL_ENTRY: u64 = 16 << 20;
const READ_SIZE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {} for its SHA-256: {source}", path.display())]
    Hash { path: PathBuf, source: io::Error },
    #[error("failed to open bundle {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is not a readable ZIP file: {source}", path.display())]
    NotZip { path: PathBuf, source: ZipError },
    #[error("bundle has no {name} entry")]
    MissingEntry { name: String },
    #[error("bundle entry {name} is {size} bytes, more than the {limit} bytes read whole")]
    EntryTooLarge { name: String, size: u64, limit: u64 },
    #[error("failed to open bundle entry {name}: {source}")]
    OpenEntry { name: String, source: ZipError },
    #[error("bundle entry {name} is corrupt: {source}")]
    Corrupt { name: String, source: io::Error },
    #[error("failed to read bundle entry {name}: {source}")]
    ReadEntry { name: String, source: io::Error },
}

impl Error {
    /// Stable short name for metrics labels and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Hash { .. } => "BundleHashFailed",
            Error::Open { .. } => "BundleOpenFailed",
            Error::NotZip { .. } => "NotZip",
            Error::MissingEntry { .. } => "MissingEntry",
            Error::EntryTooLarge { .. } => "EntryTooLarge",
            Error::OpenEntry { .. } => "BundleEntryUnreadable",
            Error::Corrupt { .. } => "BundleCorrupt",
            Error::ReadEntry { .. } => "BundleReadFailed",
        }
    }

    /// The error for a failed read of entry `name`, for `io::Error`s from [`Bundle::metrics`]
    /// (and readers around it): one that already carries an [`Error`] is unwrapped. A CRC
    /// mismatch, an invalid deflate stream or more data than declared (`InvalidData` or
    /// `InvalidInput` from the `zip` crate) or a short file mean corruption; anything else is
    /// the file system's failure.
    pub fn from_entry_io(name: &str, source: io::Error) -> Error {
        let source = match source.downcast::<Error>() {
            Ok(error) => return error,
            Err(source) => source,
        };
        let name = name.to_owned();
        match source.kind() {
            io::ErrorKind::InvalidData
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::UnexpectedEof => Error::Corrupt { name, source },
            _ => Error::ReadEntry { name, source },
        }
    }
}

/// SHA-256 (lowercase hex) and length of a file, streamed in 1 MiB reads.
pub fn sha256_file(path: &Path) -> Result<(String, u64), Error> {
    let hash_error = |source| Error::Hash {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(hash_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; READ_SIZE];
    let mut length = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(hash_error(e)),
        };
        hasher.update(&buffer[..n]);
        length += n as u64;
    }
    Ok((format!("{:x}", hasher.finalize()), length))
}

/// An open bundle file.
pub struct Bundle {
    archive: ZipArchive<File>,
}

impl Bundle {
    /// Opens a bundle: a ZIP with `metrics.jsonl` and `metadata.json`. Only the central
    /// directory is read here; entry data is checked when read.
    pub fn open(path: &Path) -> Result<Bundle, Error> {
        let file = File::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        let archive = ZipArchive::new(file).map_err(|source| Error::NotZip {
            path: path.to_owned(),
            source,
        })?;
        for name in [METRICS_ENTRY, METADATA_ENTRY] {
            if archive.index_for_name(name).is_none() {
                return Err(Error::MissingEntry {
                    name: name.to_owned(),
                });
            }
        }
        Ok(Bundle { archive })
    }

    /// Names of all entries in central directory order (lossily decoded, so none is hidden).
    pub fn entry_names(&self) -> Vec<String> {
        self.archive
            .file_names_raw()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect()
    }

    /// A small entry read whole and CRC-checked; entries over 16 MiB are refused.
    pub fn read_small(&mut self, name: &str) -> Result<Vec<u8>, Error> {
        let mut file = self.entry(name)?;
        let too_large = |size| Error::EntryTooLarge {
            name: name.to_owned(),
            size,
            limit: MAX_SMALL_ENTRY,
        };
        if file.size() > MAX_SMALL_ENTRY {
            return Err(too_large(file.size()));
        }
        // The declared size already bounds the read; `take` keeps the bound independent of it.
        let mut data = Vec::with_capacity(file.size() as usize);
        (&mut file)
            .take(MAX_SMALL_ENTRY + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::from_entry_io(name, e))?;
        if data.len() as u64 > MAX_SMALL_ENTRY {
            return Err(too_large(data.len() as u64));
        }
        Ok(data)
    }

    /// Streams `metrics.jsonl`, inflated. The `zip` crate checks the entry's CRC-32 when a read
    /// returns end of file, and fails as soon as the data outgrows its declared size; so a
    /// corrupted entry fails with an `io::Error` before or at EOF (an inflate error, "File is
    /// larger than its declared uncompressed size" or "Invalid checksum"). Lines read before
    /// that error are not trustworthy: read to EOF before committing them. The `io::Error`
    /// wraps an [`Error`] (reason `BundleCorrupt` or `BundleReadFailed`) naming the entry.
    pub fn metrics(&mut self) -> Result<impl Read + '_, Error> {
        let file = self.entry(METRICS_ENTRY)?;
        Ok(EntryReader {
            name: METRICS_ENTRY,
            file,
        })
    }

    /// Reads every entry to its end, checking each CRC-32: what `vctp bundle verify` does after
    /// comparing the SHA-256.
    pub fn check_crcs(&mut self) -> Result<(), Error> {
        for (index, name) in self.entry_names().into_iter().enumerate() {
            let mut file = self
                .archive
                .by_index(index)
                .map_err(|source| Error::OpenEntry {
                    name: name.clone(),
                    source,
                })?;
            io::copy(&mut file, &mut io::sink()).map_err(|e| Error::from_entry_io(&name, e))?;
        }
        Ok(())
    }

    fn entry(&mut self, name: &str) -> Result<ZipFile<'_, File>, Error> {
        self.archive.by_name(name).map_err(|source| match source {
            ZipError::FileNotFound => Error::MissingEntry {
                name: name.to_owned(),
            },
            source => Error::OpenEntry {
                name: name.to_owned(),
                source,
            },
        })
    }
}

/// An entry's reader whose errors name the entry.
struct EntryReader<'a> {
    name: &'static str,
    file: ZipFile<'a, File>,
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                return e;
            }
            io::Error::new(e.kind(), Error::from_entry_io(self.name, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::segment::{Encoder, FINAL_BLOCK, LEVEL, Sums, combine};
    use crate::export::zip::{EntryInfo, Layout, Method, deflate_whole, dos_datetime};
    use std::io::Write;

    const METADATA: &[u8] = br#"{"format":"vctp-metrics-export","version":1}"#;

    fn lines(window: usize) -> Vec<u8> {
        (0..3000)
            .map(|i| {
                format!(
                    "{{\"metric\":{{\"__name__\":\"up\",\"w\":\"{window}\"}},\"values\":[{i}]}}\n"
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    /// `metrics.jsonl` from two segments, plus a sums-correct header for it.
    fn metrics_deflated() -> (Vec<u8>, Vec<u8>, Sums) {
        let mut data = Vec::new();
        let mut sums = Vec::new();
        for window in 0..2 {
            let mut encoder = Encoder::new(LEVEL);
            encoder.write(&lines(window)).unwrap();
            let (segment, segment_sums) = encoder.finish().unwrap();
            data.extend_from_slice(&segment);
            sums.push(segment_sums);
        }
        data.extend_from_slice(&FINAL_BLOCK);
        (data, [lines(0), lines(1)].concat(), combine(&sums))
    }

    struct Entry<'a> {
        name: &'a str,
        method: Method,
        sums: Sums,
        data: Vec<u8>,
    }

    fn deflated<'a>(name: &'a str, content: &[u8]) -> Entry<'a> {
        let (data, sums) = deflate_whole(content);
        Entry {
            name,
            method: Method::Deflate,
            sums,
            data,
        }
    }

    /// Writes a ZIP of `entries`; returns the file and where each entry's data starts.
    fn write_zip(entries: &[Entry]) -> (tempfile::NamedTempFile, Vec<u64>) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let mut layout = Layout::new();
        let mut starts = Vec::new();
        for entry in entries {
            let header = layout
                .entry(EntryInfo {
                    name: entry.name.to_owned(),
                    method: entry.method,
                    crc32: entry.sums.crc32,
                    compressed_size: entry.data.len() as u64,
                    uncompressed_size: entry.sums.uncompressed,
                    modified: dos_datetime(1_710_079_651),
                })
                .unwrap();
            file.write_all(&header).unwrap();
            starts.push(layout.offset() - entry.data.len() as u64);
            file.write_all(&entry.data).unwrap();
        }
        file.write_all(&layout.finish()).unwrap();
        (file, starts)
    }

    /// A bundle as the export writes it; returns the file, the metrics data range and contents.
    fn write_bundle() -> (tempfile::NamedTempFile, std::ops::Range<usize>, Vec<u8>) {
        let (data, content, sums) = metrics_deflated();
        let len = data.len();
        let metrics = Entry {
            name: METRICS_ENTRY,
            method: Method::Deflate,
            sums,
            data,
        };
        let entries = [
            metrics,
            deflated(METADATA_ENTRY, METADATA),
            deflated("README.txt", b"read me\n"),
        ];
        let (file, starts) = write_zip(&entries);
        let start = starts[0] as usize;
        (file, start..start + len, content)
    }

    fn flip_byte(path: &Path, at: usize) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at] ^= 0x55;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_written_bundle_opens_and_streams_its_metrics() {
        let (file, _, content) = write_bundle();
        let mut bundle = Bundle::open(file.path()).unwrap();
        assert_eq!(
            bundle.entry_names(),
            [METRICS_ENTRY, METADATA_ENTRY, "README.txt"]
        );
        assert_eq!(bundle.read_small(METADATA_ENTRY).unwrap(), METADATA);
        let mut metrics = Vec::new();
        bundle.metrics().unwrap().read_to_end(&mut metrics).unwrap();
        assert_eq!(metrics, content);
        bundle.check_crcs().unwrap();
    }

    #[test]
    fn a_flipped_byte_in_the_metrics_data_fails_naming_metrics_jsonl() {
        let (file, range, _) = write_bundle();
        for at in [
            range.start + 3,
            range.start + range.len() / 2,
            range.end - 20,
        ] {
            let copy = tempfile::NamedTempFile::new().unwrap();
            std::fs::copy(file.path(), copy.path()).unwrap();
            flip_byte(copy.path(), at);
            let mut bundle = Bundle::open(copy.path()).unwrap();
            let err = bundle
                .metrics()
                .unwrap()
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert!(err.to_string().contains(METRICS_ENTRY), "{err}");
            // The wrapped Error comes back as is, not named twice.
            let err = Error::from_entry_io(METRICS_ENTRY, err);
            assert_eq!(err.reason(), "BundleCorrupt");
            assert_eq!(err.to_string().matches(METRICS_ENTRY).count(), 1, "{err}");
            let err = bundle.check_crcs().unwrap_err();
            assert_eq!(err.reason(), "BundleCorrupt");
            assert!(err.to_string().contains(METRICS_ENTRY), "{err}");
        }
    }

    #[test]
    fn a_flipped_byte_in_a_stored_entry_is_caught_by_the_crc() {
        // Stored data cannot fail to inflate, so only the CRC check can notice.
        let content = lines(0);
        let sums = Sums {
            crc32: crc32fast::hash(&content),
            uncompressed: content.len() as u64,
        };
        let metrics = Entry {
            name: METRICS_ENTRY,
            method: Method::Stored,
            sums,
            data: content,
        };
        let (file, starts) = write_zip(&[metrics, deflated(METADATA_ENTRY, METADATA)]);
        flip_byte(file.path(), starts[0] as usize + 100);
        let mut bundle = Bundle::open(file.path()).unwrap();
        let mut read = Vec::new();
        let err = bundle
            .metrics()
            .unwrap()
            .read_to_end(&mut read)
            .unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(err.to_string().contains(METRICS_ENTRY), "{err}");
    }

    #[test]
    fn an_io_error_that_is_not_corruption_is_a_read_failure() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let err = Error::from_entry_io(METRICS_ENTRY, denied);
        assert_eq!(err.reason(), "BundleReadFailed");
        assert!(err.to_string().contains(METRICS_ENTRY), "{err}");
    }

    #[test]
    fn a_truncated_bundle_fails_to_open_or_to_read() {
        let (file, _, _) = write_bundle();
        let bytes = std::fs::read(file.path()).unwrap();
        for len in [0, 10, bytes.len() / 2, bytes.len() - 30, bytes.len() - 1] {
            let truncated = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(truncated.path(), &bytes[..len]).unwrap();
            let failed = match Bundle::open(truncated.path()) {
                Err(err) => err.reason() == "NotZip",
                Ok(mut bundle) => bundle.check_crcs().is_err(),
            };
            assert!(failed, "truncated to {len} bytes");
        }
    }

    #[test]
    fn a_zip_without_metadata_json_is_refused_naming_it() {
        let (data, _, sums) = metrics_deflated();
        let metrics = Entry {
            name: METRICS_ENTRY,
            method: Method::Deflate,
            sums,
            data,
        };
        let (file, _) = write_zip(&[metrics, deflated("README.txt", b"x")]);
        let err = Bundle::open(file.path()).err().unwrap();
        assert_eq!(err.reason(), "MissingEntry");
        assert!(err.to_string().contains(METADATA_ENTRY), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_refused_with_the_zip_crates_message() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"{\"metric\":{}}\n".repeat(100)).unwrap();
        let err = Bundle::open(file.path()).err().unwrap();
        assert_eq!(err.reason(), "NotZip");
        assert!(
            err.to_string().contains("not a readable ZIP file: "),
            "{err}"
        );
    }

    #[test]
    fn read_small_refuses_entries_over_16_mib() {
        let mut metadata = deflated(METADATA_ENTRY, METADATA);
        metadata.sums.uncompressed = (16 << 20) + 1;
        let (file, _) = write_zip(&[deflated(METRICS_ENTRY, b""), metadata]);
        let mut bundle = Bundle::open(file.path()).unwrap();
        let err = bundle.read_small(METADATA_ENTRY).unwrap_err();
        assert_eq!(err.reason(), "EntryTooLarge");
        assert_eq!(bundle.read_small(METRICS_ENTRY).unwrap(), b"");
        let err = bundle.read_small("nothing.txt").unwrap_err();
        assert_eq!(err.reason(), "MissingEntry");
    }

    #[test]
    fn sha256_file_matches_sha2_over_the_bytes() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let empty = sha256_file(file.path()).unwrap();
        let empty_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(empty, (empty_hex.to_owned(), 0));
        // Over two read buffers and a partial third.
        let bytes: Vec<u8> = (0..(5 << 19) + 7)
            .map(|i: u32| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(file.path(), &bytes).unwrap();
        let expected = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(
            sha256_file(file.path()).unwrap(),
            (expected, bytes.len() as u64)
        );
        let missing = file.path().with_extension("missing");
        assert_eq!(
            sha256_file(&missing).unwrap_err().reason(),
            "BundleHashFailed"
        );
    }
}
