//! GitLab's human durations (`timeout: 1h 30m`, `45 minutes`, `1 day`, `3600`) in seconds.

/// The longest duration text read: a real one is a few words.
const MAX_TEXT: usize = 100;

/// Seconds in one of each unit, by every spelling accepted.
const UNITS: &[(&[&str], u64)] = &[
    (&["s", "sec", "secs", "second", "seconds"], 1),
    (&["m", "min", "mins", "minute", "minutes"], 60),
    (&["h", "hr", "hrs", "hour", "hours"], 3_600),
    (&["d", "day", "days"], 86_400),
    (&["w", "wk", "wks", "week", "weeks"], 604_800),
];

/// The seconds `text` means, or why it means none. A plain number is seconds. Otherwise it is
/// numbers each followed by a unit, separated by spaces, commas or "and" (`1h 30m`,
/// `1 hour and 30 minutes`, `1.5h`); a fraction of a second is dropped.
pub fn seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty; write a duration such as `1h 30m`".to_owned());
    }
    if text.len() > MAX_TEXT {
        return Err(format!("is longer than {MAX_TEXT} characters"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| "is too long".to_owned());
    }
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut total: u64 = 0;
    loop {
        rest = skip_separators(rest);
        if rest.is_empty() {
            return Ok(total);
        }
        let (number, after) = take_while(rest, |c| c.is_ascii_digit() || c == '.');
        if number.is_empty() {
            return Err(format!(
                "is not a duration: `{rest}` should start with a number"
            ));
        }
        let (unit, after) = take_while(after.trim_start(), |c| c.is_ascii_alphabetic());
        let scale = unit_seconds(unit).ok_or_else(|| unknown_unit(unit))?;
        let part = scaled(number, scale).ok_or_else(|| format!("has a bad number `{number}`"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| "is too long".to_owned())?;
        rest = after;
    }
}

fn skip_separators(mut text: &str) -> &str {
    loop {
        let trimmed = text.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        match trimmed.strip_prefix("and") {
            Some(after) if after.starts_with(|c: char| c.is_whitespace()) => text = after,
            _ => return trimmed,
        }
    }
}

fn take_while(text: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    let end = text.find(|c: char| !keep(c)).unwrap_or(text.len());
    text.split_at(end)
}

fn unit_seconds(unit: &str) -> Option<u64> {
    UNITS
        .iter()
        .find(|(names, _)| names.contains(&unit))
        .map(|&(_, seconds)| seconds)
}

fn unknown_unit(unit: &str) -> String {
    if unit.is_empty() {
        "has a number without a unit; use s, m, h, d or w (a plain number is seconds)".to_owned()
    } else {
        format!("has an unknown unit `{unit}`; use s, m, h, d or w")
    }
}

/// `number` (digits, maybe with a fraction) times `scale`, in whole seconds.
fn scaled(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 9 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut seconds = whole.checked_mul(scale)?;
    if !fraction.is_empty() {
        let digits: u64 = fraction.parse().ok()?;
        let denominator = 10u64.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        seconds = seconds.checked_add(digits.checked_mul(scale)? / denominator)?;
    }
    Some(seconds)
}

#[cfg(test)]
mod tests {
    use super::seconds;

    fn check(text: &str, expected: Result<u64, &str>) {
        let got = seconds(text);
        match expected {
            Ok(n) => assert_eq!(got, Ok(n), "{text}"),
            Err(part) => {
                let error = got.expect_err(text);
                assert!(error.contains(part), "{text}: {error}");
            }
        }
    }

    #[test]
    fn durations_table() {
        check("3600", Ok(3_600));
        check("90s", Ok(90));
        check("2h", Ok(7_200));
        check("1h 30m", Ok(5_400));
        check("1h30m", Ok(5_400));
        check("45 minutes", Ok(2_700));
        check("1 minute", Ok(60));
        check("1 day", Ok(86_400));
        check("2 days", Ok(172_800));
        check("1 week", Ok(604_800));
        check("1w", Ok(604_800));
        check("3 hrs", Ok(10_800));
        check("10 sec", Ok(10));
        check("1 hour and 30 minutes", Ok(5_400));
        check("1h, 5m, 3s", Ok(3_903));
        check("1.5h", Ok(5_400));
        check(".5m", Ok(30));
        check("  2H  ", Ok(7_200));
        check("", Err("is empty"));
        check("soon", Err("should start with a number"));
        check("5 fortnights", Err("unknown unit `fortnights`"));
        check("1h 30", Err("without a unit"));
        check("1..5h", Err("bad number"));
        check("99999999999999999999h", Err("bad number"));
        check("99999999999999999999", Err("too long"));
        check(&"1s ".repeat(50), Err("longer than 100"));
    }
}
