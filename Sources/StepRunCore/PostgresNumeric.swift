/// A JSON number as Postgres `numeric` will hold it: `jsonb` stores every number as `numeric`
/// (`numeric_in` on the token), and `numeric` refuses values a JSON parser happily accepts.
///
/// The rules, from `set_var_from_str` and `make_result` in Postgres's numeric.c (15), and checked
/// against a real server by `NumericRangeTests`:
/// - an exponent of magnitude 1,073,741,823 (`INT_MAX / 2`) or more is refused outright, even on zero;
/// - the display scale, `max(0, fraction digits - exponent)`, counts every fraction digit written
///   (trailing zeros too) and must be at most 16,383: `1e-16383` is accepted, `1.5e-16383` not;
/// - the first significant digit must be worth at most 10^131071 (the base-10000 weight is an
///   int16): `9.9e131071` is accepted, `1e131072` not. Zero has no such digit.
///
/// `numeric_out` then writes the value in full: an optional `-` (never for zero), the integer
/// digits (or `0`), and, when the scale is above zero, a point and exactly `scale` digits.
struct PostgresNumeric {
    var negative = false
    /// Digits before the point as written (JSON allows no leading zeros, so `0` or a significant run).
    var integerDigits = 0
    var fractionDigits = 0
    /// The exponent, saturated at ±`exponentSaturation`.
    var exponent = 0
    /// Index of the first non-zero digit among the integer digits followed by the fraction digits;
    /// nil when the number is zero.
    var firstSignificantDigit: Int?

    /// Most digits `numeric` holds before the decimal point (10^131071 is the largest power of ten).
    static let maxIntegerDigits = 131_072
    /// Most digits `numeric` holds after the decimal point (`NUMERIC_DSCALE_MASK`).
    static let maxScale = 16_383
    /// `numeric_in` refuses an exponent of this magnitude or more before looking at anything else.
    static let exponentLimit = Int(Int32.max) / 2
    /// Where the exponent's parse stops counting; any value past `exponentLimit` would do.
    static let exponentSaturation = 1 << 40

    /// The length of `numeric_out`'s text for the number, or nil when `numeric` cannot hold it.
    var renderedLength: Int? {
        guard abs(exponent) < Self.exponentLimit else { return nil }
        let scale = max(0, fractionDigits - exponent)
        guard scale <= Self.maxScale else { return nil }
        let point = scale > 0 ? 1 + scale : 0
        guard let first = firstSignificantDigit else { return 1 + point }
        // The power of ten of the first significant digit.
        let magnitude = integerDigits - 1 - first + exponent
        guard magnitude < Self.maxIntegerDigits else { return nil }
        return (negative ? 1 : 0) + max(magnitude + 1, 1) + point
    }
}
