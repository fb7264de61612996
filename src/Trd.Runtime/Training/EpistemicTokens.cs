using Trd.Runtime.Tokenization;

namespace Trd.Runtime.Training;

/// <summary>The epistemic onset set ℰ (App. C.5) under a tokenizer.</summary>
public static class EpistemicTokens
{
    /// <summary>
    /// The 16 phrases (Wait, Actually, …, Um), each tokenised bare and with a leading space; the first token of
    /// each, deduplicated, in order of first appearance.
    /// </summary>
    public static long[] Ids(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<long>();
        foreach (var phrase in Trd.Core.Metrics.EpistemicPhrases)
            foreach (var form in new[] { phrase, " " + phrase })
                if (tokenizer.Encode(form) is { Length: > 0 } tokens && !ids.Contains(tokens[0]))
                    ids.Add(tokens[0]);
        return ids.ToArray();
    }
}
