using System.Globalization;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// The character classes of Qwen's split pattern on code points, as Hugging Face's regex engine (Oniguruma, Unicode
/// mode) defines them: <c>\p{L}</c>, <c>\p{N}</c> from the general category, <c>\s</c> as the Unicode White_Space
/// property.
/// </summary>
internal static class SplitClasses
{
    /// <summary><c>\p{L}</c>: Lu, Ll, Lt, Lm, Lo.</summary>
    public static bool IsLetter(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
        _ => false,
    };

    /// <summary><c>\p{N}</c>: Nd, Nl, No.</summary>
    public static bool IsNumber(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
    {
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
        _ => false,
    };

    /// <summary>
    /// <c>\s</c>: U+0009–U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F,
    /// U+3000 (White_Space). JavaScript's <c>\s</c> differs: it leaves out U+0085 and adds U+FEFF.
    /// </summary>
    public static bool IsWhiteSpace(int codePoint) =>
        codePoint is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary><c>[\r\n]</c>.</summary>
    public static bool IsLineBreak(int codePoint) => codePoint is '\r' or '\n';

    /// <summary><c>[^\s\p{L}\p{N}]</c>: punctuation, symbols, marks, controls that are not white space, ….</summary>
    public static bool IsOther(int codePoint) => !IsWhiteSpace(codePoint) && !IsLetter(codePoint) && !IsNumber(codePoint);
}
