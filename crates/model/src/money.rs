//! Money as exact decimals.
//!
//! Prices and order totals are summed (revenue) and compared (a list price must not be below the
//! sale price); binary floating point gets both wrong at the cent (`0.1 + 0.2 != 0.3`). So every
//! amount is a [`Money`] (`rust_decimal::Decimal`) from the moment it is parsed until it is
//! written out, and counters hold integer minor units.
//!
//! On the JSON wire amounts stay numbers where the other side expects numbers (queue messages,
//! most marketplaces): `rust_decimal::serde::float{,_option}` writes them as such, and reads a
//! number through its shortest decimal form (`19.99` stays `19.99`). [`from_json`] does the same
//! for hand-checked JSON, and also accepts numeric strings, as some marketplaces send them.

use serde_json::Value;

/// An exact amount in a currency's major unit (lira, euro).
pub type Money = rust_decimal::Decimal;

/// The amount of a JSON number or numeric string, exactly as written (up to the 15–17
/// significant digits a JSON number carries through `serde_json`); `None` for anything else,
/// including non-finite and out-of-range values.
pub fn from_json(value: &Value) -> Option<Money> {
    match value {
        // `Number`'s Display is the shortest form that reads back to the same number, so the
        // decimal digits the sender wrote are the ones parsed (no binary rounding leaks in).
        Value::Number(n) => n.to_string().parse::<Money>().ok().or_else(|| Money::from_scientific(&n.to_string()).ok()),
        Value::String(s) => s.trim().parse::<Money>().ok(),
        _ => None,
    }
}

/// `amount` in minor units (cents, kuruş), rounded half away from zero; `None` when negative or
/// too large for a `u64` counter.
pub fn to_minor_units(amount: Money) -> Option<u64> {
    use rust_decimal::prelude::ToPrimitive;
    if amount.is_sign_negative() && !amount.is_zero() {
        return None;
    }
    (amount * Money::ONE_HUNDRED)
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_u64()
}

/// Minor units back to an amount with two decimals.
pub fn from_minor_units(minor: u64) -> Money {
    Money::from_i128_with_scale(i128::from(minor), 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_from_json_is_exact() {
        assert_eq!(from_json(&json!(19.99)), Some(Money::new(1999, 2)));
        assert_eq!(from_json(&json!(0.1)).unwrap() + from_json(&json!(0.2)).unwrap(), Money::new(3, 1));
        assert_eq!(from_json(&json!(12)), Some(Money::from(12)));
        assert_eq!(from_json(&json!("7.50")), Some(Money::new(750, 2)));
        assert_eq!(from_json(&json!(1e-7)), Some(Money::new(1, 7)));
        assert_eq!(from_json(&json!("abc")), None);
        assert_eq!(from_json(&json!(null)), None);
        assert_eq!(from_json(&json!(true)), None);
        assert_eq!(from_json(&json!(1e300)), None);
    }

    #[test]
    fn test_minor_units() {
        assert_eq!(to_minor_units(Money::new(24690, 2)), Some(24690));
        assert_eq!(to_minor_units(Money::new(1005, 3)), Some(101));
        assert_eq!(to_minor_units(Money::new(-1, 2)), None);
        assert_eq!(to_minor_units(Money::ZERO), Some(0));
        assert_eq!(from_minor_units(24690), Money::new(24690, 2));
    }

    #[test]
    fn test_wire_keeps_numbers() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct P {
            #[serde(with = "rust_decimal::serde::float")]
            price: Money,
        }
        let p: P = serde_json::from_value(json!({"price": 10.1})).unwrap();
        assert_eq!(p.price, Money::new(101, 1));
        assert_eq!(serde_json::to_value(&p).unwrap(), json!({"price": 10.1}));
    }
}
