//! Sizes as libvirt writes them: `"10G"` (GiB), `"1.5T"`, `"512MB"` (10^6), bytes.
//! Shared by storage (capacity), VMs (memory) and recipes.

/// Parse a size into bytes. Binary suffixes (K, M, G, T, P, E, and KiB...) are powers
/// of 1024; decimal ones (KB, MB, GB, TB...) powers of 1000, as in libvirt's `unit=`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err("expected a number with an optional unit, like \"10G\" or \"512M\"".into());
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "e" | "eib" => 1 << 60,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        "eb" => 1_000_000_000_000_000_000,
        _ => return Err(format!("unknown unit '{unit}' (use K, M, G, T, P, E for powers of 1024; KB, MB, GB... for powers of 1000)")),
    };
    let bytes = if number.contains('.') {
        let value: f64 = number
            .parse()
            .map_err(|_| format!("'{number}' is not a number"))?;
        let bytes = (value * multiplier as f64).round();
        if value > 0.0 && bytes < 1.0 {
            return Err("less than one byte (it would round to 0)".into());
        }
        if !bytes.is_finite() || bytes >= MAX_BYTES as f64 {
            return Err(too_large());
        }
        bytes as u64
    } else {
        let value: u64 = number
            .parse()
            .map_err(|_| format!("'{number}' is not a number"))?;
        value.checked_mul(multiplier).ok_or_else(too_large)?
    };
    if bytes > MAX_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The largest size libvirt takes (a signed 64-bit count of bytes: just under 8 EiB).
pub const MAX_BYTES: u64 = i64::MAX as u64;

fn too_large() -> String {
    "too large: sizes go up to just under 8E (8 EiB, libvirt's limit)".into()
}

/// Bytes in the largest binary unit that keeps one decimal: `10.0 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5T"), Ok(3 << 39));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(parse_size("lots")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_size("10X").unwrap_err().contains("unknown unit 'X'"));
        assert!(parse_size("99999999999E")
            .unwrap_err()
            .contains("too large"));
        // libvirt's limit is a signed 64-bit byte count: "7E" fits, "8E" does not.
        assert_eq!(parse_size("7E"), Ok(7 << 60));
        assert!(parse_size("8E").unwrap_err().contains("too large"));
        assert!(parse_size("8.5E").unwrap_err().contains("too large"));
        assert!(parse_size("0.0000001K").unwrap_err().contains("round to 0"));
        assert_eq!(parse_size("0.5K"), Ok(512));
    }

    #[test]
    fn formats_human_sizes() {
        assert_eq!(format_size(10 << 30), "10.0 GiB");
        assert_eq!(format_size(512), "512 B");
    }
}
