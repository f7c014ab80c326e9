//! The messages of pprof's `profile.proto` (github.com/google/pprof/proto), as
//! `go tool pprof` reads them, and a builder that interns strings, functions and
//! locations while samples are added.

use std::collections::HashMap;
use std::io::Write;

use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// One frame of a stack as a profiler resolved it: the function, its file and line,
/// and the instruction address when known.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: i64,
    pub address: u64,
}

/// Builds a [`Profile`]: strings, functions and locations are interned as samples are
/// added (index 0 of the string table is "", as the format requires).
#[derive(Debug, Default)]
pub struct Builder {
    profile: Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<Frame, u64>,
}

impl Builder {
    /// A profile whose samples carry one value per entry of `sample_types` (type,
    /// unit), e.g. `[("samples", "count"), ("cpu", "nanoseconds")]`.
    pub fn new(sample_types: &[(&str, &str)], period_type: (&str, &str), period: i64) -> Builder {
        let mut b = Builder::default();
        b.string("");
        let types: Vec<ValueType> = sample_types
            .iter()
            .map(|&(t, u)| ValueType {
                r#type: b.string(t),
                unit: b.string(u),
            })
            .collect();
        b.profile.sample_type = types;
        b.profile.period_type = Some(ValueType {
            r#type: b.string(period_type.0),
            unit: b.string(period_type.1),
        });
        b.profile.period = period;
        b
    }

    pub fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (name.to_string(), file.to_string());
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let (name, filename) = (self.string(name), self.string(file));
        self.profile.function.push(Function {
            id,
            name,
            system_name: name,
            filename,
            start_line: 0,
        });
        self.functions.insert(key, id);
        id
    }

    fn location(&mut self, frame: &Frame) -> u64 {
        if let Some(&id) = self.locations.get(frame) {
            return id;
        }
        let id = self.profile.location.len() as u64 + 1;
        let function_id = self.function(&frame.function, &frame.file);
        self.profile.location.push(Location {
            id,
            mapping_id: 0,
            address: frame.address,
            line: vec![Line {
                function_id,
                line: frame.line,
            }],
            is_folded: false,
        });
        self.locations.insert(frame.clone(), id);
        id
    }

    /// Adds a sample: `stack` leaf first, as pprof lists locations; `labels` are
    /// string labels (key, value).
    pub fn sample(&mut self, stack: &[Frame], values: Vec<i64>, labels: &[(&str, &str)]) {
        let location_id = stack.iter().map(|f| self.location(f)).collect();
        let label = labels
            .iter()
            .map(|&(k, v)| Label {
                key: self.string(k),
                str: self.string(v),
                num: 0,
                num_unit: 0,
            })
            .collect();
        self.profile.sample.push(Sample {
            location_id,
            value: values,
            label,
        });
    }

    pub fn comment(&mut self, text: &str) {
        let i = self.string(text);
        self.profile.comment.push(i);
    }

    /// The profile, encoded and gzip-compressed as Go's `net/http/pprof` serves it.
    pub fn finish(mut self, time_nanos: i64, duration_nanos: i64) -> Result<Vec<u8>, String> {
        self.profile.time_nanos = time_nanos;
        self.profile.duration_nanos = duration_nanos;
        let raw = self.profile.encode_to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw)
            .and_then(|()| gz.finish())
            .map_err(|e| format!("compressing the profile: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn interns_and_round_trips() {
        let mut b = Builder::new(&[("samples", "count")], ("cpu", "nanoseconds"), 10);
        let f = |name: &str, line| Frame {
            function: name.into(),
            file: "a.rs".into(),
            line,
            address: 0,
        };
        b.sample(&[f("leaf", 1), f("main", 9)], vec![3], &[("thread", "t")]);
        b.sample(&[f("leaf", 1), f("main", 9)], vec![2], &[("thread", "t")]);
        b.sample(&[f("leaf", 2), f("main", 9)], vec![1], &[]);
        let gz = b.finish(1, 2).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let p = Profile::decode(&raw[..]).unwrap();
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.sample.len(), 3);
        assert_eq!(p.location.len(), 3, "leaf:1, main:9, leaf:2");
        assert_eq!(p.function.len(), 2);
        assert_eq!(p.sample[0].location_id, p.sample[1].location_id);
        let name = |id: u64| {
            let f = &p.function[id as usize - 1];
            p.string_table[f.name as usize].clone()
        };
        let leaf = &p.location[p.sample[2].location_id[0] as usize - 1];
        assert_eq!(name(leaf.line[0].function_id), "leaf");
        assert_eq!(leaf.line[0].line, 2);
        assert_eq!(p.duration_nanos, 2);
    }
}
