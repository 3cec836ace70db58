//! Timestamps as RFC 3339 text (ASFF's `UpdatedAt`, a note's `UpdatedAt`), read without a
//! date library: only their order matters here.

/// Epoch milliseconds of an ASFF timestamp (RFC 3339: `2026-11-20T10:14:05.123Z`, or with
/// an offset such as `+01:00`); `None` when it is not one.
pub(crate) fn epoch_millis(text: &str) -> Option<i64> {
    let number = |digits: &str, max: i64| {
        (!digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<i64>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-');
    let year = number(ymd.next()?, 9999)?;
    let month = number(ymd.next()?, 12).filter(|m| *m >= 1)?;
    let day = number(ymd.next()?, 31).filter(|d| *d >= 1)?;
    let (clock, zone) = rest.split_at(rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len()));
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':');
    let hour = number(parts.next()?, 23)?;
    let minute = number(parts.next()?, 59)?;
    let second = number(parts.next()?, 60)?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
    let offset_minutes = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone.get(1..)?.split_once(':')?;
            sign * (number(h, 23)? * 60 + number(m, 59)?)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_are_read_as_epoch_milliseconds() {
        assert_eq!(epoch_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_millis("2026-11-20T10:14:05.123Z"),
            Some(1_795_169_645_123)
        );
        assert_eq!(
            epoch_millis("2026-11-20T10:14:05Z"),
            Some(1_795_169_645_000)
        );
        assert_eq!(
            epoch_millis("2026-11-20T11:14:05.1+01:00"),
            Some(1_795_169_645_100)
        );
        assert_eq!(
            epoch_millis("2000-03-01T00:00:00-00:30"),
            Some(951_870_600_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-20",
            "99999-01-01T00:00:00Z",
            "2026-11-20T10:14:05.x1Z",
            "2026-11-20T10:14:05+99:00",
            "2026-11-20T1é:00:00Z",
        ] {
            assert_eq!(epoch_millis(bad), None, "{bad}");
        }
    }

    fn text((y, mo, d, h, mi, se, ms): (i64, i64, i64, i64, i64, i64, i64)) -> String {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{ms:03}Z")
    }

    fn instant() -> impl proptest::strategy::Strategy<Value = (i64, i64, i64, i64, i64, i64, i64)> {
        (
            1970..2200i64,
            1..=12i64,
            1..=28i64,
            0..24i64,
            0..60i64,
            0..60i64,
            0..1000i64,
        )
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_panic(s in "\\PC{0,40}") {
            let _ = epoch_millis(&s);
        }

        #[test]
        fn instants_are_ordered_as_their_fields(a in instant(), b in instant()) {
            let (ta, tb) = (epoch_millis(&text(a)), epoch_millis(&text(b)));
            proptest::prop_assert!(ta.is_some() && tb.is_some());
            proptest::prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
        }
    }
}
