//! Personal data stays out of logs: what may be logged above debug level
//! goes through here.

/// Keeps the country code and the last two digits: enough to tell numbers
/// apart in a log, not enough to call anyone. `+221771234567` becomes
/// `+2217*******67`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let keep_start = 5.min(chars.len() - 4);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i >= chars.len() - 2 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mask_phone;

    #[test]
    fn masks_all_but_prefix_and_last_two_digits() {
        assert_eq!(mask_phone("+221771234567"), "+2217******67");
        assert_eq!(mask_phone("12345"), "*****");
        assert!(!mask_phone("+254712345678").contains("12345"));
    }
}
