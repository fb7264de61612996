using System.Text;
using Microsoft.ML.Tokenizers;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// tokenizer.json's <c>{"type": "NFC"}</c> normaliser. A lone surrogate (which no UTF-8 text, and so no Hugging
/// Face input, can hold, and which .NET's normaliser rejects) is first replaced by U+FFFD, the character its UTF-8
/// encoding would become anyway.
/// </summary>
public sealed class NfcNormalizer : Normalizer
{
    /// <summary>The one instance (the normaliser has no state).</summary>
    public static NfcNormalizer Instance { get; } = new();

    NfcNormalizer() { }

    /// <summary>NFC of <paramref name="original"/>, lone surrogates replaced by U+FFFD.</summary>
    public override string Normalize(string original)
    {
        var text = HasLoneSurrogate(original) ? ReplaceLoneSurrogates(original) : original;
        return text.IsNormalized(NormalizationForm.FormC) ? text : text.Normalize(NormalizationForm.FormC);
    }

    /// <inheritdoc cref="Normalize(string)"/>
    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    static bool HasLoneSurrogate(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }

    static string ReplaceLoneSurrogates(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var rune in s.EnumerateRunes()) b.Append(rune.ToString());
        return b.ToString();
    }
}
