namespace Trd.Runtime.Tokenization;

/// <summary>
/// Cuts raw text at added tokens, leftmost first and, among tokens starting at the same place, longest first:
/// Hugging Face's <c>AddedVocabulary</c> (an Aho–Corasick leftmost-longest match) for tokens with
/// <c>normalized: false</c>, <c>lstrip</c>/<c>rstrip</c>/<c>single_word: false</c>, as all of Qwen3's are.
/// </summary>
internal sealed class AddedTokenSplitter
{
    readonly AddedToken[] _byLengthDescending;
    readonly HashSet<char> _firstChars;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byLengthDescending = tokens.Where(t => t.Content.Length > 0).OrderByDescending(t => t.Content.Length).ToArray();
        _firstChars = _byLengthDescending.Select(t => t.Content[0]).ToHashSet();
    }

    /// <summary>
    /// Walks the text in order, calling <paramref name="onText"/> for each stretch between added tokens (never
    /// empty) and <paramref name="onToken"/> for each added token.
    /// </summary>
    public void Split(string text, Action<string> onText, Action<AddedToken> onToken)
    {
        var start = 0;
        var i = 0;
        while (i < text.Length)
        {
            var token = _firstChars.Contains(text[i]) ? MatchAt(text, i) : null;
            if (token is null) { i++; continue; }
            if (i > start) onText(text[start..i]);
            onToken(token);
            i += token.Content.Length;
            start = i;
        }
        if (start < text.Length) onText(text[start..]);
    }

    AddedToken? MatchAt(string text, int i)
    {
        var rest = text.AsSpan(i);
        foreach (var token in _byLengthDescending)
            if (rest.StartsWith(token.Content, StringComparison.Ordinal))
                return token;
        return null;
    }
}
