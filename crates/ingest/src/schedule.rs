//! Cron schedules for ingestion (`sourceConfig.config.schedule`), evaluated in UTC.
//!
//! Five fields, as in crontab(5): minute (0-59), hour (0-23), day of month (1-31), month (1-12
//! or `jan`..`dec`), day of week (0-7, 0 and 7 are Sunday, or `sun`..`sat`). Each field is
//! `*`, a value, a range `a-b`, any of those with a step `/n`, or a comma-separated list. As in
//! Vixie cron, when both day of month and day of week are restricted, a day matching *either*
//! fires. The `@hourly`, `@daily`, `@weekly` and `@monthly` shorthands are accepted.

use std::fmt;

/// A parsed schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.text)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field as a bit set of the values it allows; `restricted` unless it was `*`.
fn field(
    text: &str,
    name: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<(u64, bool), String> {
    let value = |s: &str| -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + min);
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("`{s}` is not a valid {name}"))?;
        if v < min || v > max {
            return Err(format!("{name} {v} is out of range {min}-{max}"));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("`{s}` is not a valid step in the {name} field"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if part.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("{name} range {lo}-{hi} is backwards"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text != "*"))
}

impl Cron {
    /// Parses a schedule; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "`{text}` is not a cron expression (5 fields: minute hour day-of-month month day-of-week)"
            ));
        }
        let (minutes, _) = field(parts[0], "minute", 0, 59, &[])?;
        let (hours, _) = field(parts[1], "hour", 0, 23, &[])?;
        let (days, days_restricted) = field(parts[2], "day of month", 1, 31, &[])?;
        let (months, _) = field(parts[3], "month", 1, 12, &MONTHS)?;
        let (mut weekdays, weekdays_restricted) = field(parts[4], "day of week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Self {
            text: text.trim().to_owned(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let dom = self.days & (1 << day) != 0;
        let dow = self.weekdays & (1 << weekday) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first time strictly after `after` (Unix seconds, UTC) this schedule fires, or `None`
    /// if it never does within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut minute = after.div_euclid(60) + 1;
        let limit = minute + 5 * 366 * 24 * 60;
        while minute < limit {
            let day = minute.div_euclid(1440);
            let (_, month, dom) = civil_from_days(day);
            let weekday = (day + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday.
            if self.months & (1 << month) == 0 || !self.day_matches(dom, weekday) {
                minute = (day + 1) * 1440;
                continue;
            }
            let of_day = minute - day * 1440;
            let hour = (of_day / 60) as u32;
            if self.hours & (1 << hour) == 0 {
                minute = day * 1440 + (i64::from(hour) + 1) * 60;
                continue;
            }
            if self.minutes & (1 << (of_day % 60)) == 0 {
                minute += 1;
                continue;
            }
            return Some(minute * 60);
        }
        None
    }
}

/// `2026-11-23T14:00:00Z` for Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn at(y: i64, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        // days_from_civil, the inverse of civil_from_days.
        let y = if mo <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = i64::from((mo + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60
    }

    #[test]
    fn calendar_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            civil_from_days(at(2024, 2, 29, 0, 0) / 86_400),
            (2024, 2, 29)
        );
        assert_eq!(
            civil_from_days(at(2026, 11, 23, 0, 0) / 86_400),
            (2026, 11, 23)
        );
    }

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(at(2026, 11, 23, 14, 7) + 9), "2026-11-23T14:07:09Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn next_fire_times() {
        let now = at(2026, 11, 23, 14, 7);
        let next = |e: &str| Cron::parse(e).unwrap().next_after(now).unwrap();
        assert_eq!(next("* * * * *"), at(2026, 11, 23, 14, 8));
        assert_eq!(next("*/15 * * * *"), at(2026, 11, 23, 14, 15));
        assert_eq!(next("0 */6 * * *"), at(2026, 11, 23, 18, 0));
        assert_eq!(next("@daily"), at(2026, 11, 24, 0, 0));
        assert_eq!(next("30 2 * * mon-fri"), at(2026, 11, 24, 2, 30)); // Tuesday
        assert_eq!(next("0 0 * * sun"), at(2026, 11, 29, 0, 0));
        assert_eq!(next("0 0 * * 7"), at(2026, 11, 29, 0, 0));
        assert_eq!(next("@monthly"), at(2026, 12, 1, 0, 0));
        assert_eq!(next("0 12 29 feb *"), at(2028, 2, 29, 12, 0));
        assert_eq!(next("5,35 14 * * *"), at(2026, 11, 23, 14, 35));
        // Day of month OR day of week when both are restricted.
        assert_eq!(next("0 0 1 * fri"), at(2026, 11, 27, 0, 0));
        // Strictly after: a schedule due exactly now fires next time.
        let exact = at(2026, 11, 23, 14, 0);
        assert_eq!(
            Cron::parse("0 * * * *").unwrap().next_after(exact),
            Some(at(2026, 11, 23, 15, 0))
        );
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(now), None);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let e = |s: &str| Cron::parse(s).unwrap_err();
        assert!(e("* * * *").contains("5 fields"));
        assert!(e("60 * * * *").contains("minute 60 is out of range 0-59"));
        assert!(e("* * * foo *").contains("`foo` is not a valid month"));
        assert!(e("*/0 * * * *").contains("step"));
        assert!(e("* 5-2 * * *").contains("backwards"));
    }
}
