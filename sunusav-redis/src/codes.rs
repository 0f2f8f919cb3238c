//! The codes the Lua scripts store in Redis: one letter per job state (the
//! job hash's state field, and the suffix of the state's key), and the short
//! names of the job hash's fields.
//!
//! The Lua side holds the same table once, in `lua/common.lua` (`ST` and `F`,
//! keyed by the names below); a test checks that the two agree entry by
//! entry, and that the scripts spell no code outside that table.

use sunusav_core::ports::queue::JobState;

/// A job state: its name (the key in Lua's `ST`, and the field of the stats
/// reply) and its code (the job hash's state, and the suffix of its key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateCode {
    pub(crate) state: JobState,
    pub(crate) name: &'static str,
    pub(crate) code: &'static str,
}

const WAITING: StateCode = StateCode { state: JobState::Waiting, name: "waiting", code: "w" };
const ACTIVE: StateCode = StateCode { state: JobState::Active, name: "active", code: "a" };
const DELAYED: StateCode = StateCode { state: JobState::Delayed, name: "delayed", code: "d" };
const FAILED: StateCode = StateCode { state: JobState::Failed, name: "failed", code: "f" };
const COMPLETED: StateCode = StateCode { state: JobState::Completed, name: "completed", code: "c" };
const DEAD: StateCode = StateCode { state: JobState::Dead, name: "dead", code: "x" };

/// Every state, as Lua's `ST`.
pub(crate) const STATES: [StateCode; 6] = [WAITING, ACTIVE, DELAYED, FAILED, COMPLETED, DEAD];

/// The entry of a state (exhaustive: a new state must be given a code).
pub(crate) const fn state_code(state: JobState) -> StateCode {
    match state {
        JobState::Waiting => WAITING,
        JobState::Active => ACTIVE,
        JobState::Delayed => DELAYED,
        JobState::Failed => FAILED,
        JobState::Completed => COMPLETED,
        JobState::Dead => DEAD,
    }
}

/// The state of a code stored in a job hash, if it is one.
pub(crate) fn state_of_code(code: &str) -> Option<JobState> {
    STATES.iter().find(|s| s.code == code).map(|s| s.state)
}

/// A field of a job hash: its name (the key in Lua's `F`, and the field of
/// the admin script's job info reply) and its code (the hash field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) code: &'static str,
}

/// The fields of a job hash, by name.
pub(crate) mod field {
    use super::Field;

    /// The state code (see [`super::STATES`]).
    pub(crate) const STATE: Field = Field { name: "state", code: "st" };
    /// The payload.
    pub(crate) const DATA: Field = Field { name: "data", code: "d" };
    /// Attempts started.
    pub(crate) const ATTEMPTS: Field = Field { name: "attempts", code: "a" };
    /// Attempts allowed.
    pub(crate) const MAX_ATTEMPTS: Field = Field { name: "max_attempts", code: "m" };
    /// Priority.
    pub(crate) const PRIORITY: Field = Field { name: "priority", code: "p" };
    /// Stalls (leases that expired without an ack).
    pub(crate) const STALLS: Field = Field { name: "stalls", code: "s" };
    /// Enqueued at (unix ms).
    pub(crate) const CREATED: Field = Field { name: "created", code: "c" };
    /// Due at (unix ms).
    pub(crate) const DUE: Field = Field { name: "due", code: "u" };
    /// Finished at (unix ms); only once completed or dead.
    pub(crate) const FINISHED: Field = Field { name: "finished", code: "f" };
    /// The last error; only once an attempt failed.
    pub(crate) const ERROR: Field = Field { name: "error", code: "e" };
    /// The lease token of an active job ('' otherwise).
    pub(crate) const TOKEN: Field = Field { name: "token", code: "t" };
    /// The member of the waiting set (sequence + id).
    pub(crate) const WAIT_MEMBER: Field = Field { name: "wait_member", code: "wm" };
    /// Backoff base (ms).
    pub(crate) const BACKOFF_BASE: Field = Field { name: "backoff_base", code: "bb" };
    /// Backoff ceiling (ms).
    pub(crate) const BACKOFF_MAX: Field = Field { name: "backoff_max", code: "bm" };
    /// Backoff jitter ('1' or '0').
    pub(crate) const BACKOFF_JITTER: Field = Field { name: "backoff_jitter", code: "bj" };
}

/// Every field of a job hash, as Lua's `F`.
#[cfg_attr(not(test), expect(dead_code, reason = "the Lua side uses the codes; its table is checked against this one"))]
pub(crate) const FIELDS: [Field; 15] = [
    field::STATE,
    field::DATA,
    field::ATTEMPTS,
    field::MAX_ATTEMPTS,
    field::PRIORITY,
    field::STALLS,
    field::CREATED,
    field::DUE,
    field::FINISHED,
    field::ERROR,
    field::TOKEN,
    field::WAIT_MEMBER,
    field::BACKOFF_BASE,
    field::BACKOFF_MAX,
    field::BACKOFF_JITTER,
];

/// The fields the admin script's job info reply names (besides `id`), as
/// Lua's `INFO` in `admin.lua`; `finished` and `error` only when set.
pub(crate) const INFO: [Field; 10] = [
    field::STATE,
    field::DATA,
    field::ATTEMPTS,
    field::MAX_ATTEMPTS,
    field::PRIORITY,
    field::STALLS,
    field::CREATED,
    field::DUE,
    field::FINISHED,
    field::ERROR,
];

/// The name of the id in the job info reply.
pub(crate) const INFO_ID: &str = "id";

/// The name of a job info reply's error history (after [`INFO`]'s fields):
/// an array of `attempt:at_ms:error`, oldest first.
pub(crate) const INFO_ERRORS: &str = "errors";

/// The name of the pause flag in the stats reply (besides one count per state).
pub(crate) const STATS_PAUSED: &str = "paused";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::scripts::sources;

    fn common() -> &'static str {
        include_str!("lua/common.lua")
    }

    /// The text between the braces of `local NAME = { ... }` in `src`.
    fn lua_table<'a>(src: &'a str, name: &str) -> &'a str {
        let head = format!("local {name} = {{");
        let start = src.find(&head).unwrap_or_else(|| panic!("no `{head}` in the Lua source")) + head.len();
        let len = src[start..].find('}').unwrap_or_else(|| panic!("`{head}` is not closed"));
        &src[start..start + len]
    }

    fn unquote(s: &str) -> &str {
        let s = s.trim();
        s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or_else(|| panic!("not a quoted string: {s}"))
    }

    /// A Lua table of `name = 'code'` entries.
    fn lua_map(src: &str, name: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for entry in lua_table(src, name).split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (k, v) = entry.split_once('=').unwrap_or_else(|| panic!("{name}: not `name = 'code'`: {entry}"));
            let prior = out.insert(k.trim().to_string(), unquote(v).to_string());
            assert!(prior.is_none(), "{name}: {k} given twice");
        }
        out
    }

    /// A Lua list of quoted strings.
    fn lua_list(src: &str, name: &str) -> Vec<String> {
        lua_table(src, name)
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| unquote(e).to_string())
            .collect()
    }

    fn rust_map<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, code) in entries {
            assert!(out.insert(name.to_string(), code.to_string()).is_none(), "{name} given twice in codes.rs");
        }
        out
    }

    #[test]
    fn the_lua_state_codes_are_the_rust_ones() {
        let rust = rust_map(STATES.iter().map(|s| (s.name, s.code)));
        assert_eq!(lua_map(common(), "ST"), rust, "common.lua's ST and codes.rs's STATES differ");
    }

    #[test]
    fn the_lua_job_hash_fields_are_the_rust_ones() {
        let rust = rust_map(FIELDS.iter().map(|f| (f.name, f.code)));
        assert_eq!(lua_map(common(), "F"), rust, "common.lua's F and codes.rs's FIELDS differ");
    }

    #[test]
    fn the_lua_job_info_fields_are_the_rust_ones() {
        let rust: Vec<&str> = INFO.iter().map(|f| f.name).collect();
        assert_eq!(
            lua_list(include_str!("lua/admin.lua"), "INFO"),
            rust,
            "admin.lua's INFO and codes.rs's INFO differ"
        );
        assert!(INFO.iter().all(|f| FIELDS.contains(f)), "an INFO field is not a job hash field");
    }

    #[test]
    fn codes_and_names_are_unique_and_each_state_has_its_entry() {
        for (i, s) in STATES.iter().enumerate() {
            assert_eq!(state_code(s.state), *s, "{}", s.name);
            assert_eq!(state_of_code(s.code), Some(s.state), "{}", s.name);
            assert!(STATES[i + 1..].iter().all(|o| o.code != s.code && o.name != s.name && o.state != s.state));
        }
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(FIELDS[i + 1..].iter().all(|o| o.code != f.code && o.name != f.name), "{} twice", f.name);
        }
        assert_eq!(state_of_code("q"), None);
        assert_eq!(state_of_code(""), None);
    }

    /// The quoted string literals of a Lua source, comments left out.
    fn literals(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in src.lines() {
            let mut rest = line;
            loop {
                let quote = rest.find(['\'', '"']);
                let comment = rest.find("--");
                match (quote, comment) {
                    (Some(q), c) if c.is_none_or(|c| q < c) => {
                        let delim = rest[q..].chars().next().unwrap_or('\'');
                        let body = &rest[q + 1..];
                        let end = body.find(delim).unwrap_or_else(|| panic!("unclosed string in: {line}"));
                        out.push(body[..end].to_string());
                        rest = &body[end + 1..];
                    }
                    _ => break,
                }
            }
        }
        out
    }

    #[test]
    fn no_script_spells_a_state_or_field_code_outside_the_table() {
        let tables = [lua_table(common(), "ST"), lua_table(common(), "F")];
        let mut codes: Vec<String> = STATES.iter().map(|s| s.code.to_string()).collect();
        codes.extend(STATES.iter().map(|s| format!(":{}", s.code)));
        codes.extend(FIELDS.iter().map(|f| f.code.to_string()));
        for (name, src) in sources() {
            let mut src = src.to_string();
            if name == "common" {
                // Leave out the table itself.
                for body in tables {
                    src = src.replacen(body, "", 1);
                }
            }
            for lit in literals(&src) {
                assert!(!codes.contains(&lit), "{name}.lua spells the code '{lit}': use ST or F from common.lua");
            }
        }
        // The checker sees a spelled code.
        assert!(literals("redis.call('HGET', k, 'st') -- 'x'").contains(&"st".to_string()));
        assert!(!literals("local a = 1 -- 'x'").contains(&"x".to_string()));
    }
}
