using Microsoft.ML.Tokenizers;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// Qwen2/Qwen3's split pre-tokenizer (tokenizer.json: <c>Split</c>, behaviour <c>Isolated</c>), scanning code
/// points. The pattern is
/// <code>
/// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
/// </code>
/// A .NET <see cref="System.Text.RegularExpressions.Regex"/> port would see UTF-16 code units, so a letter or digit
/// outside the BMP (𝐀, 𝟏, 𠀀) would be two "other" characters; this scanner reads surrogate pairs as one code
/// point and implements each alternative by hand, in the pattern's order, with the backtracking it implies.
/// The classes are Hugging Face's (Oniguruma): <c>\s</c> includes U+0085 and not U+FEFF, and <c>(?i:…)</c> folds
/// U+017F (ſ) to s. JavaScript ports (transformers.js, @lenml/tokenizers) differ on all three; we follow Hugging
/// Face (<see cref="SplitClasses"/>).
/// </summary>
public sealed class Qwen2PreTokenizer : PreTokenizer
{
    /// <summary>The pattern, exactly as Qwen2/Qwen3's tokenizer.json writes it.</summary>
    public const string Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The one instance (the pre-tokenizer has no state).</summary>
    public static Qwen2PreTokenizer Instance { get; } = new();

    Qwen2PreTokenizer() { }

    /// <summary>The pieces of <paramref name="text"/> as (offset, length) in UTF-16 units; they tile the text.</summary>
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text.AsSpan());

    /// <inheritdoc cref="PreTokenize(string)"/>
    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    /// <summary>The pieces of <paramref name="text"/> as (offset, length) in UTF-16 units; they tile the text.</summary>
    public static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int Offset, int Length)>();
        var i = 0;
        while (i < text.Length)
        {
            var end = MatchAt(text, i);
            pieces.Add((i, end - i));
            i = end;
        }
        return pieces;
    }

    /// <summary>The end of the pattern's match at <paramref name="i"/>: the first alternative that matches wins.</summary>
    static int MatchAt(ReadOnlySpan<char> s, int i)
    {
        var end = Contraction(s, i);
        if (end < 0) end = LetterRun(s, i);
        if (end < 0) end = Digit(s, i);
        if (end < 0) end = OtherRun(s, i);
        if (end < 0) end = SpacesThroughLastLineBreak(s, i);
        if (end < 0) end = SpacesNotBeforeNonSpace(s, i);
        if (end < 0) end = Spaces(s, i);
        // Every code point is a letter, a number, white space or "other", so some alternative always matches.
        return end > i ? end : i + Width(s, i);
    }

    /// <summary><c>(?i:'s|'t|'re|'ve|'m|'ll|'d)</c>; Oniguruma's case folding also maps ſ (U+017F) to s.</summary>
    static int Contraction(ReadOnlySpan<char> s, int i)
    {
        if (s[i] != '\'' || i + 1 >= s.Length) return -1;
        var a = s[i + 1];
        if (a is 's' or 'S' or '\u017F' or 't' or 'T' or 'm' or 'M' or 'd' or 'D') return i + 2;
        if (i + 2 >= s.Length) return -1;
        var b = s[i + 2];
        var matched = a switch
        {
            'r' or 'R' or 'v' or 'V' => b is 'e' or 'E',
            'l' or 'L' => b is 'l' or 'L',
            _ => false,
        };
        return matched ? i + 3 : -1;
    }

    /// <summary><c>[^\r\n\p{L}\p{N}]?\p{L}+</c>.</summary>
    static int LetterRun(ReadOnlySpan<char> s, int i)
    {
        var c = CodePoint(s, i, out var width);
        if (SplitClasses.IsLetter(c)) return Run(s, i, SplitClasses.IsLetter);
        if (SplitClasses.IsLineBreak(c) || SplitClasses.IsNumber(c)) return -1;
        var j = i + width;
        return j < s.Length && SplitClasses.IsLetter(CodePoint(s, j, out _)) ? Run(s, j, SplitClasses.IsLetter) : -1;
    }

    /// <summary><c>\p{N}</c>: one digit at a time.</summary>
    static int Digit(ReadOnlySpan<char> s, int i) =>
        SplitClasses.IsNumber(CodePoint(s, i, out var width)) ? i + width : -1;

    /// <summary><c> ?[^\s\p{L}\p{N}]+[\r\n]*</c>.</summary>
    static int OtherRun(ReadOnlySpan<char> s, int i)
    {
        var j = i;
        if (s[j] == ' ' && j + 1 < s.Length && SplitClasses.IsOther(CodePoint(s, j + 1, out _))) j++;
        if (!SplitClasses.IsOther(CodePoint(s, j, out _))) return -1;
        j = Run(s, j, SplitClasses.IsOther);
        return Run(s, j, SplitClasses.IsLineBreak);
    }

    /// <summary>
    /// <c>\s*[\r\n]+</c>: <c>\s*</c> takes the whole white-space run and gives back until a line break follows, so
    /// the match ends just after the run's last \r or \n.
    /// </summary>
    static int SpacesThroughLastLineBreak(ReadOnlySpan<char> s, int i)
    {
        var end = Run(s, i, SplitClasses.IsWhiteSpace);
        // White space is all in the BMP, so the run is one UTF-16 unit per code point.
        for (var k = end - 1; k >= i; k--)
            if (SplitClasses.IsLineBreak(s[k])) return k + 1;
        return -1;
    }

    /// <summary>
    /// <c>\s+(?!\S)</c>: the whole run at the end of the text; otherwise the run less its last character (which
    /// then starts the next piece, e.g. the space in " word"), if that leaves at least one.
    /// </summary>
    static int SpacesNotBeforeNonSpace(ReadOnlySpan<char> s, int i)
    {
        var end = Run(s, i, SplitClasses.IsWhiteSpace);
        if (end == i) return -1;
        if (end == s.Length) return end;
        return end - 1 > i ? end - 1 : -1;
    }

    /// <summary><c>\s+</c>.</summary>
    static int Spaces(ReadOnlySpan<char> s, int i)
    {
        var end = Run(s, i, SplitClasses.IsWhiteSpace);
        return end > i ? end : -1;
    }

    /// <summary>The end of the run of code points satisfying <paramref name="inClass"/> from <paramref name="i"/>.</summary>
    static int Run(ReadOnlySpan<char> s, int i, Func<int, bool> inClass)
    {
        while (i < s.Length && inClass(CodePoint(s, i, out var width))) i += width;
        return i;
    }

    /// <summary>The code point at <paramref name="i"/>; a lone surrogate is taken as itself (one unit).</summary>
    static int CodePoint(ReadOnlySpan<char> s, int i, out int width)
    {
        if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return char.ConvertToUtf32(s[i], s[i + 1]);
        }
        width = 1;
        return s[i];
    }

    static int Width(ReadOnlySpan<char> s, int i)
    {
        CodePoint(s, i, out var width);
        return width;
    }
}
