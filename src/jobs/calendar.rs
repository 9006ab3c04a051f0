//! systemd calendar expressions (`OnCalendar=`, systemd.time(7)): checked
//! by one parser on every machine (plus `systemd-analyze calendar` where it
//! exists, which can only refuse more), and translated into the five fields
//! of a crontab line where cron can express them.
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("--on-calendar {expr:?}: {problem} (examples: daily, hourly, \"*-*-* 02:30:00\", \"Mon..Fri *-*-* 08:00\"; see systemd.time(7))")]
    Invalid { expr: String, problem: String },
    #[error("--on-calendar {expr:?}: systemd refuses it: {message}")]
    Systemd { expr: String, message: String },
    #[error("--on-calendar {expr:?} cannot be written as a crontab line: {why}; use a systemd timer (no --cron) or a calendar cron can express")]
    NotCron { expr: String, why: String },
}

/// One comma-separated item of a field: `*`, `5`, `1..5`, `0/15`, `1..20/5`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Any,
    Value {
        from: u32,
        to: Option<u32>,
        step: Option<u32>,
    },
}

/// A parsed expression; every field is a list of items (`*` when omitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Days of the week, Monday = 1 ... Sunday = 7 (`None`: every day).
    weekdays: Option<Vec<(u32, u32)>>,
    year: Vec<Item>,
    month: Vec<Item>,
    day: Vec<Item>,
    /// `~`: days counted from the end of the month.
    day_from_end: bool,
    hour: Vec<Item>,
    minute: Vec<Item>,
    /// Seconds: `true` when exactly zero (cron runs at whole minutes).
    second_is_zero: bool,
    timezone: Option<String>,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(word: &str) -> Option<u32> {
    let w = word.to_ascii_lowercase();
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (0..7)
        .find(|&i| w == WEEKDAYS[i] || w == full[i])
        .map(|i| i as u32 + 1)
}

fn number(text: &str, min: u32, max: u32, what: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("{what} {text:?} is not a number"))?;
    if n < min || n > max {
        return Err(format!("{what} {n} is outside {min}..{max}"));
    }
    Ok(n)
}

/// A field's comma-separated items, each value within `min..=max`.
fn field(text: &str, min: u32, max: u32, what: &str) -> Result<Vec<Item>, String> {
    if text.is_empty() {
        return Err(format!("empty {what}"));
    }
    text.split(',')
        .map(|item| {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(number(s, 1, max.max(1), &format!("{what} step"))?)),
                None => (item, None),
            };
            if range == "*" {
                return match step {
                    None => Ok(Item::Any),
                    // As systemd: a repetition starts at a value.
                    Some(s) => Err(format!(
                        "{what} */{s}: write {min}/{s} (a repetition starts at a value)"
                    )),
                };
            }
            match range.split_once("..") {
                Some((a, b)) => {
                    let (from, to) = (number(a, min, max, what)?, number(b, min, max, what)?);
                    if to < from {
                        return Err(format!("{what} range {range} runs backwards"));
                    }
                    Ok(Item::Value {
                        from,
                        to: Some(to),
                        step,
                    })
                }
                None => Ok(Item::Value {
                    from: number(range, min, max, what)?,
                    to: None,
                    step,
                }),
            }
        })
        .collect()
}

fn weekday_list(text: &str) -> Result<Vec<(u32, u32)>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let day = |w: &str| weekday(w).ok_or_else(|| format!("{w:?} is not a day of the week"));
            match item.split_once("..") {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    if b < a {
                        return Err(format!("day range {item} runs backwards (Mon..Sun order)"));
                    }
                    Ok((a, b))
                }
                None => day(item).map(|d| (d, d)),
            }
        })
        .collect()
}

/// The seconds field: `00`, `0`, `*`, `30`, `0/15`, `5.5`...; only whether it is zero matters.
fn seconds(text: &str) -> Result<bool, String> {
    for item in text.split(',') {
        let (range, step) = item.split_once('/').unwrap_or((item, ""));
        let numbers = range.split("..").chain((!step.is_empty()).then_some(step));
        for n in numbers {
            if n == "*" {
                continue;
            }
            let v: f64 = n
                .parse()
                .map_err(|_| format!("second {n:?} is not a number"))?;
            if !(0.0..60.0).contains(&v) {
                return Err(format!("second {n} is outside 0..59"));
            }
        }
    }
    Ok(matches!(text, "0" | "00"))
}

fn shorthand(expr: &str) -> Option<&'static str> {
    Some(match expr.to_ascii_lowercase().as_str() {
        "minutely" => "*-*-* *:*:00",
        "hourly" => "*-*-* *:00:00",
        "daily" => "*-*-* 00:00:00",
        "weekly" => "Mon *-*-* 00:00:00",
        "monthly" => "*-*-01 00:00:00",
        "yearly" | "annually" => "*-01-01 00:00:00",
        "quarterly" => "*-01,04,07,10-01 00:00:00",
        "semiannually" => "*-01,07-01 00:00:00",
        _ => return None,
    })
}

/// Parse an expression with this module's own rules.
pub fn parse(expr: &str) -> Result<Calendar, CalendarError> {
    let invalid = |problem: String| CalendarError::Invalid {
        expr: expr.to_owned(),
        problem,
    };
    if let Some(c) = expr.chars().find(|c| c.is_control()) {
        return Err(invalid(format!("control character {c:?}")));
    }
    let text = shorthand(expr.trim()).unwrap_or(expr.trim());
    if text.is_empty() {
        return Err(invalid("empty".to_owned()));
    }
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let mut cal = Calendar {
        weekdays: None,
        year: vec![Item::Any],
        month: vec![Item::Any],
        day: vec![Item::Any],
        day_from_end: false,
        hour: vec![Item::Value {
            from: 0,
            to: None,
            step: None,
        }],
        minute: vec![Item::Value {
            from: 0,
            to: None,
            step: None,
        }],
        second_is_zero: true,
        timezone: None,
    };
    // A trailing time zone: UTC, or Area/City.
    if words.len() > 1 {
        let last = words[words.len() - 1];
        if last
            .chars()
            .all(|c| c.is_ascii_alphabetic() || "/_+-".contains(c))
            && last.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && !last.contains("..")
            && weekday(last).is_none()
        {
            cal.timezone = Some(last.to_owned());
            words.pop();
        }
    }
    let mut words = words.into_iter().peekable();
    if let Some(first) = words.peek() {
        if first
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        {
            cal.weekdays = Some(weekday_list(first).map_err(invalid)?);
            words.next();
        }
    }
    let mut saw_date = false;
    let mut saw_time = false;
    for word in words {
        if word.contains(':') && !saw_time {
            saw_time = true;
            let parts: Vec<&str> = word.split(':').collect();
            if parts.len() < 2 || parts.len() > 3 {
                return Err(invalid(format!("time {word:?} is not HH:MM or HH:MM:SS")));
            }
            cal.hour = field(parts[0], 0, 23, "hour").map_err(invalid)?;
            cal.minute = field(parts[1], 0, 59, "minute").map_err(invalid)?;
            cal.second_is_zero = match parts.get(2) {
                Some(s) => seconds(s).map_err(invalid)?,
                None => true,
            };
        } else if word.contains('-') && !saw_date && !saw_time {
            saw_date = true;
            let (date, from_end) = match word.split_once('~') {
                Some((ym, d)) => (format!("{ym}-{d}"), true),
                None => (word.to_owned(), false),
            };
            let parts: Vec<&str> = date.split('-').collect();
            let (y, m, d) = match parts.as_slice() {
                [m, d] => ("*", *m, *d),
                [y, m, d] => (*y, *m, *d),
                _ => return Err(invalid(format!("date {word:?} is not YYYY-MM-DD or MM-DD"))),
            };
            cal.year = field(y, 0, 2199, "year").map_err(invalid)?;
            // Two digits mean 20YY, as in systemd; otherwise 1970..2199.
            let bad_year = cal.year.iter().find_map(|item| match item {
                Item::Value { from, to, .. } => [Some(*from), *to]
                    .into_iter()
                    .flatten()
                    .find(|y| (100..1970).contains(y)),
                Item::Any => None,
            });
            if let Some(y) = bad_year {
                return Err(invalid(format!("year {y} is outside 1970..2199")));
            }
            cal.month = field(m, 1, 12, "month").map_err(invalid)?;
            cal.day = field(d, 1, 31, "day").map_err(invalid)?;
            cal.day_from_end = from_end;
        } else {
            return Err(invalid(format!(
                "{word:?} is not a day, date, time or time zone here"
            )));
        }
    }
    Ok(cal)
}

/// Ask systemd too, where it is installed; our parser has already run, so
/// this only refuses what systemd refuses and we missed.
fn systemd_accepts(expr: &str) -> Result<(), CalendarError> {
    let Ok(out) = Command::new("systemd-analyze")
        .args(["calendar", "--", expr])
        .output()
    else {
        return Ok(());
    };
    if out.status.success() {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    // A calendar that is valid but never elapses again is still valid.
    if message.contains("never") {
        return Ok(());
    }
    Err(CalendarError::Systemd {
        expr: expr.to_owned(),
        message,
    })
}

/// Check an expression: our parser, then systemd's where present.
pub fn validate(expr: &str) -> Result<Calendar, CalendarError> {
    let cal = parse(expr)?;
    systemd_accepts(expr)?;
    Ok(cal)
}

fn cron_items(items: &[Item], max: u32) -> String {
    items
        .iter()
        .map(|item| match item {
            Item::Any => "*".to_owned(),
            Item::Value { from, to, step } => {
                let mut text = from.to_string();
                match (to, step) {
                    (Some(to), _) => text.push_str(&format!("-{to}")),
                    // systemd's `5/10` is "5, then every 10": cron's `5-MAX/10`.
                    (None, Some(_)) => text.push_str(&format!("-{max}")),
                    (None, None) => {}
                }
                if let Some(s) = step {
                    text.push_str(&format!("/{s}"));
                }
                text
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn cron_weekdays(days: &[(u32, u32)]) -> String {
    // cron counts Sunday as 0; systemd as the last day (7).
    let mut parts = Vec::new();
    for &(a, b) in days {
        match (a, b) {
            (7, 7) => parts.push("0".to_owned()),
            (a, 7) => {
                parts.push(if a == 6 {
                    "6".to_owned()
                } else {
                    format!("{a}-6")
                });
                parts.push("0".to_owned());
            }
            (a, b) if a == b => parts.push(a.to_string()),
            (a, b) => parts.push(format!("{a}-{b}")),
        }
    }
    parts.join(",")
}

impl Calendar {
    /// The five cron fields (minute hour day month weekday), or why cron
    /// cannot say it.
    pub fn cron_fields(&self) -> Result<String, String> {
        if self.year != [Item::Any] {
            return Err("cron has no year field".to_owned());
        }
        if !self.second_is_zero {
            return Err("cron runs at whole minutes (seconds must be 00)".to_owned());
        }
        if let Some(tz) = &self.timezone {
            return Err(format!("cron runs in the system's time zone, not {tz}"));
        }
        if self.day_from_end {
            return Err("cron cannot count days from the end of the month (~)".to_owned());
        }
        let every_day = self.day == [Item::Any];
        if self.weekdays.is_some() && !every_day {
            return Err(
                "cron runs when EITHER the day of the month or the weekday matches, systemd when both do"
                    .to_owned(),
            );
        }
        Ok(format!(
            "{} {} {} {} {}",
            cron_items(&self.minute, 59),
            cron_items(&self.hour, 23),
            cron_items(&self.day, 31),
            cron_items(&self.month, 12),
            self.weekdays
                .as_deref()
                .map_or_else(|| "*".to_owned(), cron_weekdays)
        ))
    }
}

/// An expression as crontab's five fields, or a clear refusal.
pub fn to_cron(expr: &str) -> Result<String, CalendarError> {
    validate(expr)?
        .cron_fields()
        .map_err(|why| CalendarError::NotCron {
            expr: expr.to_owned(),
            why,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expr: &str) -> String {
        parse(expr)
            .unwrap_or_else(|e| panic!("{e}"))
            .cron_fields()
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn what_systemd_time_documents_parses_and_becomes_cron() {
        assert_eq!(cron("daily"), "0 0 * * *");
        assert_eq!(cron("hourly"), "0 * * * *");
        assert_eq!(cron("minutely"), "* * * * *");
        assert_eq!(cron("weekly"), "0 0 * * 1");
        assert_eq!(cron("monthly"), "0 0 1 * *");
        assert_eq!(cron("yearly"), "0 0 1 1 *");
        assert_eq!(cron("*-*-* 02:30:00"), "30 2 * * *");
        assert_eq!(cron("Mon..Fri *-*-* 08:00"), "0 8 * * 1-5");
        assert_eq!(cron("Sat,Sun 10:15"), "15 10 * * 6,0");
        assert_eq!(cron("Fri..Sun 10:15"), "15 10 * * 5-6,0");
        assert_eq!(cron("*-*-1,15 04:00"), "0 4 1,15 * *");
        assert_eq!(cron("*:0/15"), "0-59/15 * * * *");
        assert_eq!(cron("*-*-* *:0/10:00"), "0-59/10 * * * *");
        assert_eq!(cron("03-05 08:05"), "5 8 5 3 *");
        assert_eq!(cron("*-*-* 8..18:00"), "0 8-18 * * *");
    }

    #[test]
    fn the_examples_of_systemd_time_parse() {
        for expr in [
            "Sat,Thu,Mon..Wed,Sat..Sun",
            "Mon,Sun 12-*-* 2,1:23",
            "Wed *-1",
            "Wed..Wed,Wed *-1",
            "Wed, 17:48",
            "Wed..Sat,Tue 12-10-15 1:2:3",
            "*-*-7 0:0:0",
            "10-15",
            "monday *-12-* 17:00",
            "Mon,Fri *-*-3,1,2 *:30:45",
            "12,14,13,12:20,10,30",
            "12..14:10,20,30",
            "mon,fri *-1/2-1,3 *:30:45",
            "03-05 08:05:40",
            "08:05:40",
            "05:40",
            "Sat,Sun 12-05 08:05:40",
            "Sat,Sun 08:05:40",
            "2003-03-05 05:40",
            "05:40:23.4200004/3.1700005",
            "2003-02..04-05",
            "2003-03-05 05:40 UTC",
            "2003-03-05",
            "03-05",
            "hourly",
            "monthly",
            "weekly",
            "yearly",
            "annually",
            "*:2/3",
        ] {
            assert!(parse(expr).is_ok(), "{expr}: {:?}", parse(expr));
        }
        assert!(parse("0500-01-01").is_err());
    }

    #[test]
    fn nonsense_is_refused_and_so_is_what_cron_cannot_say() {
        for bad in [
            "bogus",
            "",
            "25:00",
            "*-13-01",
            "Mon..Frx 08:00",
            "*-*-* 02:30:00 x",
            "*:*/10",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse("daily\nUnit=evil.service").is_err());
        for (expr, why) in [
            ("*-*-* 02:30:15", "whole minutes"),
            ("2030-*-* 02:30", "no year"),
            ("Mon *-*-1 00:00", "EITHER"),
            ("*-02~01 00:00", "end of the month"),
            ("*-*-* 02:30 UTC", "time zone"),
        ] {
            let err = parse(expr).unwrap().cron_fields().unwrap_err();
            assert!(err.contains(why), "{expr}: {err}");
        }
    }
}
