/// The recorded outcome of `JSONValidator` on each implementation-defined (`i_`) file of
/// JSONTestSuite. `ConformanceTests` fails when the parser's behaviour changes, so a change
/// is noticed and this table is updated on purpose.
///
/// Filled in by running the suite once: numbers of any size are accepted (passed through
/// verbatim; the database decides), 500 nested arrays are within the default depth of 512,
/// and everything that is not well-formed UTF-8 with paired surrogates (including BOMs and
/// UTF-16 input) is rejected.
enum ImplementationDefined {
    enum Outcome: Equatable, CustomStringConvertible {
        case accepted, rejected

        var description: String {
            self == .accepted ? "accepted" : "rejected"
        }
    }

    static let outcomes: [String: Outcome] = [
        // Huge or tiny numbers: grammar-valid, passed through verbatim.
        "i_number_double_huge_neg_exp.json": .accepted,
        "i_number_huge_exp.json": .accepted,
        "i_number_neg_int_huge_exp.json": .accepted,
        "i_number_pos_double_huge_exp.json": .accepted,
        "i_number_real_neg_overflow.json": .accepted,
        "i_number_real_pos_overflow.json": .accepted,
        "i_number_real_underflow.json": .accepted,
        "i_number_too_big_neg_int.json": .accepted,
        "i_number_too_big_pos_int.json": .accepted,
        "i_number_very_big_negative_int.json": .accepted,
        // Unpaired surrogate escapes: loneSurrogate.
        "i_object_key_lone_2nd_surrogate.json": .rejected,
        "i_string_1st_surrogate_but_2nd_missing.json": .rejected,
        "i_string_1st_valid_surrogate_2nd_invalid.json": .rejected,
        "i_string_incomplete_surrogate_and_escape_valid.json": .rejected,
        "i_string_incomplete_surrogate_pair.json": .rejected,
        "i_string_incomplete_surrogates_escape_valid.json": .rejected,
        "i_string_invalid_lonely_surrogate.json": .rejected,
        "i_string_invalid_surrogate.json": .rejected,
        "i_string_inverted_surrogates_U+1D11E.json": .rejected,
        "i_string_lone_second_surrogate.json": .rejected,
        // Malformed UTF-8 inside strings: invalidUTF8.
        "i_string_UTF-8_invalid_sequence.json": .rejected,
        "i_string_UTF8_surrogate_U+D800.json": .rejected,
        "i_string_invalid_utf-8.json": .rejected,
        "i_string_iso_latin_1.json": .rejected,
        "i_string_lone_utf8_continuation_byte.json": .rejected,
        "i_string_not_in_unicode_range.json": .rejected,
        "i_string_overlong_sequence_2_bytes.json": .rejected,
        "i_string_overlong_sequence_6_bytes.json": .rejected,
        "i_string_overlong_sequence_6_bytes_null.json": .rejected,
        "i_string_truncated-utf-8.json": .rejected,
        // Not UTF-8 JSON at all (UTF-16, byte order marks): syntax.
        "i_string_UTF-16LE_with_BOM.json": .rejected,
        "i_string_utf16BE_no_BOM.json": .rejected,
        "i_string_utf16LE_no_BOM.json": .rejected,
        "i_structure_UTF-8_BOM_empty_object.json": .rejected,
        // Depth 500 is within the default maximum of 512.
        "i_structure_500_nested_arrays.json": .accepted,
    ]
}
