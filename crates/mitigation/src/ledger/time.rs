//! Alert times as epoch milliseconds, and the RFC 3339 text the history keys sort by. The
//! alerts write their times either way; the ledger compares them as numbers.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn number(text: &str) -> Option<i64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `2026-12-04T20:49:14Z`, `2026-12-04T20:49:14.123+0000` (CloudWatch), `...+01:00`: epoch
/// milliseconds, or `None` for anything else.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-');
    let (year, month, day) = (
        number(ymd.next()?)?,
        number(ymd.next()?)?,
        number(ymd.next()?)?,
    );
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':');
    let (hour, minute, second) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    let millis = match fraction {
        "" => 0,
        f => number(&format!("{f:0<3}")[..3])?,
    };
    let offset_minutes = match zone {
        "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return None;
            }
            sign * (number(&digits[..2])? * 60 + number(&digits[2..])?)
        }
    };
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    valid.then(|| {
        let seconds =
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
                - offset_minutes * 60;
        seconds * 1000 + millis
    })
}

/// `2026-12-04T20:49:14.123Z`: sorts as the time does (the history's sort keys).
pub fn format_rfc3339_millis(millis: i64) -> String {
    let (days, in_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Now, in epoch milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_time_forms_parse_to_the_same_instant() {
        let want = Some(1_764_881_354_000);
        assert_eq!(parse_rfc3339_millis("2025-12-04T20:49:14Z"), want);
        assert_eq!(parse_rfc3339_millis("2025-12-04T20:49:14.000+0000"), want);
        assert_eq!(parse_rfc3339_millis("2025-12-04T21:49:14+01:00"), want);
        assert_eq!(
            parse_rfc3339_millis("2025-12-04T20:49:14.5Z"),
            want.map(|m| m + 500)
        );
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-12-04T20:49:14",
            "2025-12-04T20:49:14+1",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_round_trips_and_sorts_as_time_does() {
        for millis in [0, 951_782_400_123, 1_764_881_354_000, 4_102_444_800_999] {
            let text = format_rfc3339_millis(millis);
            assert_eq!(parse_rfc3339_millis(&text), Some(millis), "{text}");
        }
        assert_eq!(
            format_rfc3339_millis(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert!(format_rfc3339_millis(999) < format_rfc3339_millis(1000));
    }
}
