//! The ZIP container of an export bundle (APPNOTE 6.3.x), as pure layout: header bytes and
//! offsets, no I/O.
//!
//! The bundle is streamed to object storage front to back: for each entry a local header from
//! [`Layout::entry`], then the entry's data, which the caller copies from the already-compressed
//! segments; at the end the central directory from [`Layout::finish`]. Sizes and CRCs are known
//! before each entry (from the segments' sums), so they go into the local header and no data
//! descriptor is needed, and nothing is ever written twice. ZIP64 records appear only where a
//! size or offset needs them, which keeps small bundles readable by the oldest tools.

use super::segment::{Encoder, FINAL_BLOCK, Sums};
use std::collections::HashSet;

/// A 32-bit size or offset at or above this is stored in a ZIP64 extra field instead.
const MAX32: u64 = 0xFFFF_FFFF;
/// An entry count at or above this needs the ZIP64 end of central directory record.
const MAX16: u64 = 0xFFFF;
const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const LOCAL_HEADER_LEN: usize = 30;
const ZIP64_EXTRA_TAG: u16 = 0x0001;
/// Version needed to extract: 2.0 for deflate, 4.5 for ZIP64.
const VERSION_DEFLATE: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// Version made by: Unix (3) in the high byte, so readers honour the external attributes; APPNOTE
/// 6.3 in the low byte.
const VERSION_MADE_BY: u16 = (3 << 8) | 63;
/// General purpose flag bit 11: names are UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// External attributes: a regular file with mode 0644, in the Unix high half.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
/// Level of [`deflate_whole`]: its files are small, so the best ratio costs nothing.
const WHOLE_LEVEL: u32 = 9;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid ZIP entry name {name:?}: {problem}")]
    Name { name: String, problem: &'static str },
    #[error("duplicate ZIP entry name {name:?}")]
    Duplicate { name: String },
    #[error(
        "stored ZIP entry {name:?} has compressed size {compressed} but uncompressed size {uncompressed}"
    )]
    StoredSize {
        name: String,
        compressed: u64,
        uncompressed: u64,
    },
    #[error("ZIP entry {name:?} would end the archive beyond 2^64 bytes")]
    TooLarge { name: String },
}

impl Error {
    /// Stable short name for metrics labels and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Name { .. } => "InvalidEntryName",
            Error::Duplicate { .. } => "DuplicateEntryName",
            Error::StoredSize { .. } => "StoredSizeMismatch",
            Error::TooLarge { .. } => "ArchiveTooLarge",
        }
    }
}

/// How an entry's data is compressed; the value is the header's method code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Method {
    Stored = 0,
    Deflate = 8,
}

/// What the headers say about one entry; the caller writes exactly `compressed_size` bytes of
/// data after its local header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Relative `/`-separated path inside the archive.
    pub name: String,
    pub method: Method,
    /// CRC-32 of the uncompressed data.
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Modification time as DOS (time, date), from [`dos_datetime`].
    pub modified: (u16, u16),
}

/// An entry and where its local header starts.
#[derive(Debug)]
struct Placed {
    info: EntryInfo,
    offset: u64,
}

impl Placed {
    fn version_needed(&self, force_zip64: bool) -> u16 {
        let zip64 = force_zip64
            || self.info.compressed_size >= MAX32
            || self.info.uncompressed_size >= MAX32
            || self.offset >= MAX32;
        if zip64 {
            VERSION_ZIP64
        } else {
            VERSION_DEFLATE
        }
    }

    /// Writes the fields the local and central headers share, from "version needed to extract"
    /// to "extra field length"; `sizes` are the 32-bit compressed and uncompressed sizes.
    fn put_shared_fields(
        &self,
        out: &mut Vec<u8>,
        force_zip64: bool,
        sizes: [u32; 2],
        extra: usize,
    ) {
        let (time, date) = self.info.modified;
        put16(out, self.version_needed(force_zip64));
        put16(out, FLAG_UTF8);
        put16(out, self.info.method as u16);
        put16(out, time);
        put16(out, date);
        put32(out, self.info.crc32);
        put32(out, sizes[0]);
        put32(out, sizes[1]);
        // Both fit: names are checked to ≤ 0xFFFF bytes, the extra field is at most 28 bytes.
        put16(out, self.info.name.len() as u16);
        put16(out, extra as u16);
    }
}

/// Lays out a ZIP archive entry by entry, tracking offsets.
#[derive(Debug, Default)]
pub struct Layout {
    entries: Vec<Placed>,
    names: HashSet<String>,
    offset: u64,
    force_zip64: bool,
}

impl Layout {
    /// An empty archive; ZIP64 records only where needed.
    pub fn new() -> Layout {
        Layout::default()
    }

    /// Always writes ZIP64 records: extra fields with every size and offset, and the ZIP64 end of
    /// central directory. For tests, which cannot reach 4 GiB on every path.
    pub fn force_zip64(self) -> Layout {
        Layout {
            force_zip64: true,
            ..self
        }
    }

    /// The local file header of the next entry; the caller then writes exactly
    /// `info.compressed_size` bytes of data. Sizes and CRC are in the header (no data descriptor,
    /// general purpose bit 3 clear), names are flagged UTF-8 (bit 11).
    pub fn entry(&mut self, info: EntryInfo) -> Result<Vec<u8>, Error> {
        check_name(&info.name)?;
        if info.method == Method::Stored && info.compressed_size != info.uncompressed_size {
            return Err(Error::StoredSize {
                name: info.name,
                compressed: info.compressed_size,
                uncompressed: info.uncompressed_size,
            });
        }
        if self.names.contains(&info.name) {
            return Err(Error::Duplicate { name: info.name });
        }
        // APPNOTE 4.5.3: a local ZIP64 extra field holds both sizes, so both move there together.
        let zip64 =
            self.force_zip64 || info.compressed_size >= MAX32 || info.uncompressed_size >= MAX32;
        let mut extra = Vec::new();
        let uncompressed = field32(info.uncompressed_size, zip64, &mut extra);
        let compressed = field32(info.compressed_size, zip64, &mut extra);
        let extra = zip64_extra(&extra);
        let header_len = LOCAL_HEADER_LEN + info.name.len() + extra.len();
        let Some(end) = self
            .offset
            .checked_add(header_len as u64)
            .and_then(|end| end.checked_add(info.compressed_size))
        else {
            return Err(Error::TooLarge { name: info.name });
        };

        let placed = Placed {
            info,
            offset: self.offset,
        };
        let mut header = Vec::with_capacity(header_len);
        put32(&mut header, LOCAL_HEADER_SIGNATURE);
        placed.put_shared_fields(
            &mut header,
            self.force_zip64,
            [compressed, uncompressed],
            extra.len(),
        );
        header.extend_from_slice(placed.info.name.as_bytes());
        header.extend_from_slice(&extra);

        self.names.insert(placed.info.name.clone());
        self.entries.push(placed);
        self.offset = end;
        Ok(header)
    }

    /// Bytes written so far: headers plus the data the caller promised with each entry.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The central directory, the ZIP64 end of central directory record and locator when
    /// needed, and the end of central directory record: the last bytes of the archive.
    pub fn finish(self) -> Vec<u8> {
        let force = self.force_zip64;
        let mut out = Vec::new();
        for placed in &self.entries {
            // In the central directory only the fields that overflow move to the extra field.
            let mut extra = Vec::new();
            let uncompressed = field32(placed.info.uncompressed_size, force, &mut extra);
            let compressed = field32(placed.info.compressed_size, force, &mut extra);
            let offset = field32(placed.offset, force, &mut extra);
            let extra = zip64_extra(&extra);
            put32(&mut out, CENTRAL_HEADER_SIGNATURE);
            put16(&mut out, VERSION_MADE_BY);
            placed.put_shared_fields(&mut out, force, [compressed, uncompressed], extra.len());
            put16(&mut out, 0); // comment length
            put16(&mut out, 0); // disk number start
            put16(&mut out, 0); // internal attributes
            put32(&mut out, EXTERNAL_ATTRIBUTES);
            put32(&mut out, offset);
            out.extend_from_slice(placed.info.name.as_bytes());
            out.extend_from_slice(&extra);
        }

        let count = self.entries.len() as u64;
        let directory_offset = self.offset;
        let directory_size = out.len() as u64;
        let zip64 = force || count >= MAX16 || directory_offset >= MAX32 || directory_size >= MAX32;
        if zip64 {
            let record_offset = directory_offset.saturating_add(directory_size);
            put32(&mut out, ZIP64_EOCD_SIGNATURE);
            put64(&mut out, 44); // size of the rest of this record
            put16(&mut out, VERSION_MADE_BY);
            put16(&mut out, VERSION_ZIP64);
            put32(&mut out, 0); // this disk
            put32(&mut out, 0); // disk with the central directory
            put64(&mut out, count); // entries on this disk
            put64(&mut out, count);
            put64(&mut out, directory_size);
            put64(&mut out, directory_offset);
            put32(&mut out, ZIP64_LOCATOR_SIGNATURE);
            put32(&mut out, 0); // disk with the ZIP64 end of central directory
            put64(&mut out, record_offset);
            put32(&mut out, 1); // total disks
        }
        // With ZIP64 every classic field holds its marker, so readers must use the ZIP64 record.
        let (count16, size32, offset32) = if zip64 {
            (MAX16 as u16, MAX32 as u32, MAX32 as u32)
        } else {
            (count as u16, directory_size as u32, directory_offset as u32)
        };
        put32(&mut out, EOCD_SIGNATURE);
        put16(&mut out, 0); // this disk
        put16(&mut out, 0); // disk with the central directory
        put16(&mut out, count16); // entries on this disk
        put16(&mut out, count16);
        put32(&mut out, size32);
        put32(&mut out, offset32);
        put16(&mut out, 0); // comment length
        out
    }
}

/// The 32-bit header value of a size or offset; the ZIP64 marker when it does not fit or
/// `to_extra` asks for it, with the real value appended to the ZIP64 extra `fields`.
fn field32(value: u64, to_extra: bool, fields: &mut Vec<u64>) -> u32 {
    if to_extra || value >= MAX32 {
        fields.push(value);
        MAX32 as u32
    } else {
        value as u32
    }
}

/// The ZIP64 extended information extra field holding `fields`, or nothing when there are none.
fn zip64_extra(fields: &[u64]) -> Vec<u8> {
    let mut extra = Vec::with_capacity(4 + 8 * fields.len());
    if !fields.is_empty() {
        put16(&mut extra, ZIP64_EXTRA_TAG);
        put16(&mut extra, (8 * fields.len()) as u16);
        for &field in fields {
            put64(&mut extra, field);
        }
    }
    extra
}

/// Entry names are relative `/`-separated paths, so no reader extracts outside its target.
fn check_name(name: &str) -> Result<(), Error> {
    let problem = if name.is_empty() {
        "empty"
    } else if name.len() > MAX16 as usize {
        "longer than 65535 bytes"
    } else if name.starts_with('/') || name.as_bytes().get(1) == Some(&b':') {
        "absolute"
    } else if name.contains(['\\', '\0']) {
        "contains a backslash or NUL"
    } else if name.split('/').any(|part| part == "..") {
        "contains `..`"
    } else {
        return Ok(());
    };
    Err(Error::Name {
        name: name.to_owned(),
        problem,
    })
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A small in-memory file deflated whole, final block included, for `metadata.json` and
/// `README.txt`: the compressed bytes and their sums.
pub fn deflate_whole(data: &[u8]) -> (Vec<u8>, Sums) {
    let deflate = || {
        let mut encoder = Encoder::new(WHOLE_LEVEL);
        encoder.write(data)?;
        encoder.finish()
    };
    let sums = || Sums {
        crc32: crc32fast::hash(data),
        uncompressed: data.len() as u64,
    };
    match deflate() {
        Ok((mut compressed, sums)) => {
            compressed.extend_from_slice(&FINAL_BLOCK);
            (compressed, sums)
        }
        // zlib fails only on misuse, never on data; should it ever fail, stored blocks are
        // still valid deflate, so the bundle is written anyway.
        Err(_) => (stored_blocks(data), sums()),
    }
}

/// `data` as deflate stored blocks (BTYPE 00, at most 65,535 bytes each), the last one final.
fn stored_blocks(data: &[u8]) -> Vec<u8> {
    const MAX_STORED: usize = 0xFFFF;
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / MAX_STORED + 1));
    let mut chunks = data.chunks(MAX_STORED).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none())); // BFINAL, BTYPE 00, padding to the byte
        // Fits: chunks are at most 0xFFFF bytes.
        put16(&mut out, chunk.len() as u16);
        put16(&mut out, !(chunk.len() as u16));
        out.extend_from_slice(chunk);
    }
    out
}

/// DOS time and date (as stored in ZIP headers) of Unix seconds, UTC, clamped to the range DOS
/// dates can hold, 1980-01-01 to 2107-12-31. DOS times have 2-second resolution.
pub fn dos_datetime(unix_seconds: i64) -> (u16, u16) {
    const MIN: i64 = 315_532_800; // 1980-01-01T00:00:00Z
    const MAX: i64 = 4_354_819_199; // 2107-12-31T23:59:59Z
    let seconds = unix_seconds.clamp(MIN, MAX);
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let time =
        (second_of_day / 3600) << 11 | (second_of_day % 3600 / 60) << 5 | (second_of_day % 60 / 2);
    let date = (year - 1980) << 9 | month << 5 | day;
    // Both fit in 16 bits thanks to the clamp.
    (time as u16, date as u16)
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`),
/// for the non-negative counts `dos_datetime` passes.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::segment::{LEVEL, combine};
    use std::io::{Read, Seek, Write};
    use std::path::Path;
    use std::process::{Command, Output, Stdio};

    const MODIFIED: i64 = 1_710_079_651; // 2024-03-10T14:07:31Z

    fn info(name: &str, method: Method, sums: Sums, compressed: usize) -> EntryInfo {
        EntryInfo {
            name: name.to_owned(),
            method,
            crc32: sums.crc32,
            compressed_size: compressed as u64,
            uncompressed_size: sums.uncompressed,
            modified: dos_datetime(MODIFIED),
        }
    }

    /// An export bundle in memory: `metrics.jsonl` from three segments, `metadata.json` and
    /// `README.txt` deflated whole, and a stored entry with a UTF-8 name. Returns the archive
    /// and the contents.
    fn bundle(mut layout: Layout) -> (Vec<u8>, Vec<(&'static str, Vec<u8>)>) {
        let windows: Vec<String> = (0..3)
            .map(|w| format!("{{\"window\":{w},\"values\":[1,2,3]}}\n").repeat(2000))
            .collect();
        let mut metrics = Vec::new();
        let mut sums = Vec::new();
        for window in &windows {
            let mut encoder = Encoder::new(LEVEL);
            for chunk in window.as_bytes().chunks(1000) {
                encoder.write(chunk).unwrap();
            }
            let (compressed, window_sums) = encoder.finish().unwrap();
            metrics.extend_from_slice(&compressed);
            sums.push(window_sums);
        }
        metrics.extend_from_slice(&FINAL_BLOCK);
        let contents = vec![
            ("metrics.jsonl", windows.concat().into_bytes()),
            ("metadata.json", br#"{"format":1}"#.to_vec()),
            ("README.txt", "Exported metrics — a series a line.\n".into()),
            ("notes/größe.txt", b"stored as is".to_vec()),
        ];
        let mut out = Vec::new();
        for (name, content) in &contents {
            let (method, data, sums) = match *name {
                "metrics.jsonl" => (Method::Deflate, metrics.clone(), combine(&sums)),
                "notes/größe.txt" => {
                    let sums = Sums {
                        crc32: crc32fast::hash(content),
                        uncompressed: content.len() as u64,
                    };
                    (Method::Stored, content.clone(), sums)
                }
                _ => {
                    let (data, sums) = deflate_whole(content);
                    (Method::Deflate, data, sums)
                }
            };
            assert_eq!(layout.offset(), out.len() as u64);
            out.extend_from_slice(&layout.entry(info(name, method, sums, data.len())).unwrap());
            out.extend_from_slice(&data);
            assert_eq!(layout.offset(), out.len() as u64);
        }
        out.extend_from_slice(&layout.finish());
        (out, contents)
    }

    fn assert_zip_crate_reads(archive: &[u8], contents: &[(&str, Vec<u8>)]) {
        let mut zip = ::zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
        assert_eq!(zip.len(), contents.len());
        for (name, expected) in contents {
            let mut file = zip.by_name(name).unwrap();
            assert_eq!(file.unix_mode(), Some(0o100_644));
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            assert_eq!(&data, expected, "{name}");
        }
    }

    fn succeeded(command: &Command, output: std::io::Result<Output>) {
        let output = output.unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        assert!(
            output.status.success(),
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run(command: &mut Command) {
        let output = command.output();
        succeeded(command, output);
    }

    /// Python's zipfile on `path`, opened as `z`, running `script`.
    fn python(path: &Path, script: &str) -> Command {
        let program =
            format!("import zipfile, sys, zlib\nz = zipfile.ZipFile(sys.argv[1])\n{script}");
        let mut command = Command::new("python3");
        command.arg("-c").arg(program).arg(path);
        command
    }

    fn python_and_unzip_accept(archive: &[u8], contents: &[(&str, Vec<u8>)]) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(archive).unwrap();
        // testzip reads every entry and checks its CRC; then the contents are compared.
        let mut script = String::from("assert z.testzip() is None\n");
        for (name, expected) in contents {
            script += &format!(
                "assert zlib.crc32(z.read({name:?})) == {}\n",
                crc32fast::hash(expected)
            );
        }
        script += &format!("assert len(z.namelist()) == {}\n", contents.len());
        run(&mut python(file.path(), &script));
        run(Command::new("unzip").arg("-tq").arg(file.path()));
    }

    fn has_zip64_end_records(archive: &[u8]) -> bool {
        archive
            .windows(4)
            .any(|w| w == ZIP64_EOCD_SIGNATURE.to_le_bytes())
    }

    #[test]
    fn a_bundle_of_segments_reads_back_with_the_zip_crate_python_and_unzip() {
        let (archive, contents) = bundle(Layout::new());
        assert!(!has_zip64_end_records(&archive));
        assert_zip_crate_reads(&archive, &contents);
        python_and_unzip_accept(&archive, &contents);
    }

    #[test]
    fn a_forced_zip64_bundle_reads_back_with_the_zip_crate_python_and_unzip() {
        let (archive, contents) = bundle(Layout::new().force_zip64());
        assert!(has_zip64_end_records(&archive));
        // The classic end record holds only markers, so readers had to use the ZIP64 records.
        assert_eq!(&archive[archive.len() - 12..archive.len() - 2], &[0xFF; 10]);
        assert_zip_crate_reads(&archive, &contents);
        python_and_unzip_accept(&archive, &contents);
    }

    /// One 1 MiB block of export-like lines of 258 bytes. Longest matches at distance 258 are
    /// memcpy'd by inflaters, where the distance-1 matches of zeros are copied byte by byte:
    /// unzip checks this 1.5 times faster than zeros, Python 5 times (at the cost of a 20 MB
    /// file instead of 4 MB).
    fn block_of_lines() -> (String, Vec<u8>) {
        let mut line = String::from(r#"{"metric":{"__name__":"vm_cpu","vm":"vm-1"},"values":[1]}"#);
        line.extend(std::iter::repeat_n(' ', 257 - line.len()));
        line.push('\n');
        let block = line.bytes().cycle().take(1 << 20).collect();
        (line, block)
    }

    /// Streams `metrics.jsonl` of 4.1 GiB as one segment of [`block_of_lines`] repeated 4,200
    /// times; returns its sums. Level 9: at level 1 (zlib-rs's quick strategy) the file would be
    /// several times larger.
    fn put_huge_metrics(file: &mut impl Write, layout: &mut Layout, block: &[u8]) -> Sums {
        const REPEAT: usize = 4200;
        let mut encoder = Encoder::new(9);
        encoder.write(block).unwrap();
        let (segment, one) = encoder.finish().unwrap();
        let sums = combine(&vec![one; REPEAT]);
        assert!(sums.uncompressed > MAX32);
        let compressed = segment.len() * REPEAT + FINAL_BLOCK.len();
        let entry = info("metrics.jsonl", Method::Deflate, sums, compressed);
        file.write_all(&layout.entry(entry).unwrap()).unwrap();
        for _ in 0..REPEAT {
            file.write_all(&segment).unwrap();
        }
        file.write_all(&FINAL_BLOCK).unwrap();
        sums
    }

    #[test]
    fn an_entry_over_4_gib_gets_zip64_sizes_that_python_and_unzip_verify() {
        let (line, block) = block_of_lines();
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file.as_file());
        let mut layout = Layout::new();
        let sums = put_huge_metrics(&mut out, &mut layout, &block);
        let readme = deflate_whole(b"readme\n");
        let readme_info = info("README.txt", Method::Deflate, readme.1, readme.0.len());
        out.write_all(&layout.entry(readme_info).unwrap()).unwrap();
        out.write_all(&readme.0).unwrap();
        out.write_all(&layout.finish()).unwrap();
        drop(out);
        assert!(file.as_file().metadata().unwrap().len() < 25 << 20);

        // unzip inflates and checks every entry while Python reads metrics.jsonl block by
        // block, comparing contents; zipfile checks the CRC at the end of the entry.
        let mut unzip = Command::new("unzip");
        unzip.arg("-tq").arg(file.path());
        let unzip_child = unzip.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        let script = format!(
            "info = z.getinfo('metrics.jsonl')\n\
             assert info.file_size == {size}, info.file_size\n\
             block = ({line:?}.encode() * 4065)[:1 << 20]\n\
             n = 0\n\
             with z.open(info) as f:\n    \
                 while chunk := f.read(1 << 20):\n        \
                     assert chunk == block[:len(chunk)], n\n        \
                     n += len(chunk)\n\
             assert n == {size}, n\n\
             assert z.read('README.txt') == b'readme\\n'\n",
            size = sums.uncompressed
        );
        run(&mut python(file.path(), &script));
        let unzip_output = unzip_child.and_then(|child| child.wait_with_output());
        succeeded(&unzip, unzip_output);
    }

    #[test]
    fn entries_past_4_gib_get_zip64_offsets_and_end_records() {
        // A sparse stored entry of zeros pushes the next local header past 4 GiB without
        // using disk space; the readers are only asked for the small entries after it.
        let block = Sums {
            crc32: crc32fast::hash(&[0; 4096]),
            uncompressed: 4096,
        };
        let mut four_gib = block;
        while four_gib.uncompressed < 1 << 32 {
            four_gib = combine(&[four_gib, four_gib]);
        }
        let zeros_sums = combine(&[four_gib, block]);
        let zeros_len = zeros_sums.uncompressed;
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut out = std::io::BufWriter::new(file.as_file());
        let mut layout = Layout::new();
        let stored = info("zeros.bin", Method::Stored, zeros_sums, zeros_len as usize);
        out.write_all(&layout.entry(stored).unwrap()).unwrap();
        // Seeking past the end leaves a hole that reads as zeros.
        out.seek(std::io::SeekFrom::Start(layout.offset())).unwrap();
        let (compressed, sums) = deflate_whole(b"after the hole\n");
        let after = info("after.txt", Method::Deflate, sums, compressed.len());
        out.write_all(&layout.entry(after).unwrap()).unwrap();
        out.write_all(&compressed).unwrap();
        let tail = layout.finish();
        assert!(has_zip64_end_records(&tail));
        out.write_all(&tail).unwrap();
        drop(out);
        assert!(file.as_file().metadata().unwrap().len() > 1 << 32);

        let script = format!(
            "assert z.getinfo('zeros.bin').file_size == {zeros_len}\n\
             assert z.getinfo('after.txt').header_offset > 0xFFFFFFFF\n\
             assert z.read('after.txt') == b'after the hole\\n'\n"
        );
        run(&mut python(file.path(), &script));
        run(Command::new("unzip")
            .arg("-tq")
            .arg(file.path())
            .arg("after.txt"));
        let mut zip = ::zip::ZipArchive::new(file.reopen().unwrap()).unwrap();
        let after = zip.by_name("after.txt").unwrap();
        assert_eq!(std::io::read_to_string(after).unwrap(), "after the hole\n");
    }

    #[test]
    fn a_huge_entry_has_both_sizes_in_its_local_zip64_extra_field() {
        let mut layout = Layout::new();
        let sums = Sums {
            crc32: 7,
            uncompressed: 5 << 30,
        };
        let header = layout
            .entry(info("metrics.jsonl", Method::Deflate, sums, 1000))
            .unwrap();
        assert_eq!(&header[4..6], &VERSION_ZIP64.to_le_bytes());
        assert_eq!(&header[18..26], &[0xFF; 8]);
        let extra = &header[LOCAL_HEADER_LEN + "metrics.jsonl".len()..];
        let mut expected = vec![0x01, 0x00, 16, 0];
        expected.extend_from_slice(&(5u64 << 30).to_le_bytes());
        expected.extend_from_slice(&1000u64.to_le_bytes());
        assert_eq!(extra, expected);
    }

    #[test]
    fn unsafe_names_duplicates_and_resized_stored_entries_are_refused() {
        let mut layout = Layout::new();
        let entry = |name: &str| info(name, Method::Deflate, Sums::default(), 2);
        let long = "a".repeat(0x1_0000);
        let unsafe_names = ["", "/etc/passwd", "a/../../b", "..", "C:/x", "a\\b", &long];
        for name in unsafe_names {
            let err = layout.entry(entry(name)).unwrap_err();
            assert_eq!(err.reason(), "InvalidEntryName", "{name}");
        }
        layout.entry(entry("a/b..c")).unwrap();
        let err = layout.entry(entry("a/b..c")).unwrap_err();
        assert_eq!(err.reason(), "DuplicateEntryName");
        let resized = info("x", Method::Stored, Sums::default(), 1);
        assert_eq!(
            layout.entry(resized).unwrap_err().reason(),
            "StoredSizeMismatch"
        );
        // Only the accepted entry counts.
        assert_eq!(layout.offset(), (LOCAL_HEADER_LEN + 6 + 2) as u64);
    }

    #[test]
    fn the_stored_block_fallback_of_deflate_whole_inflates() {
        for len in [0, 1, 0xFFFF, 0x1_0000, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut inflated = Vec::new();
            let blocks = stored_blocks(&data);
            flate2::read::DeflateDecoder::new(blocks.as_slice())
                .read_to_end(&mut inflated)
                .unwrap();
            assert_eq!(inflated, data, "{len}");
        }
    }

    #[test]
    fn dos_datetime_encodes_utc_and_clamps_to_1980_through_2107() {
        let time = (14 << 11) | (7 << 5) | (31 / 2);
        let date = (44 << 9) | (3 << 5) | 10;
        assert_eq!(dos_datetime(MODIFIED), (time, date));
        assert_eq!(dos_datetime(951_782_400), (0, (20 << 9) | (2 << 5) | 29)); // 2000-02-29
        assert_eq!(dos_datetime(0), (0, (1 << 5) | 1));
        let last = ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
        assert_eq!(dos_datetime(i64::MAX), last);
        assert_eq!(dos_datetime(4_354_819_199), last);
    }
}
