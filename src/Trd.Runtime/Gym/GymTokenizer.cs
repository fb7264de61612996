using Trd.Core;
using GymTask = Trd.Core.Gym;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Tokenization;

namespace Trd.Runtime.Gym;

/// <summary>
/// The gym's vocabulary: <see cref="SmallTokenizer"/> (256 bytes, the paper's 16 epistemic phrases bare and
/// space-prefixed, Qwen3's added tokens) plus one token for every word of the pipeline's prompt templates and the
/// chat template, so the instructions the tiny models read cost a token a word. Digits, "+", "=" and newlines stay
/// single bytes: the arithmetic is done a digit at a time, as Qwen3's own split does it.
/// </summary>
public static class GymTokenizer
{
    /// <summary>The words made single tokens on top of <see cref="SmallTokenizer.DefaultWords"/>.</summary>
    public static IReadOnlyList<string> Words { get; } = CollectWords();

    static List<string> CollectWords()
    {
        var terms = new[] { 7, 3, 8 };
        var y = GymTask.Solution(terms);
        var texts = new[]
        {
            Prompts.Initial(GymTask.Question(terms)),
            Prompts.InitialWithReference(GymTask.Question(terms), y),
            Prompts.Refine(GymTask.Question(terms), y, null),
            Prompts.Refine(GymTask.Question(terms), y, y),
            Prompts.Notice("attempt", 1, 2),
            "user assistant system Wait, ",
        };
        var words = new List<string>();
        foreach (var text in texts)
            foreach (var (offset, length) in Qwen2PreTokenizer.Split(text.AsSpan()))
            {
                var piece = text.Substring(offset, length);
                if (piece.Length > 1 && !piece.Any(char.IsDigit) && !words.Contains(piece)) words.Add(piece);
            }
        return words;
    }

    /// <summary>Writes the gym's tokenizer.json into a model directory.</summary>
    public static void Write(string directory) => SmallTokenizer.Write(directory, Words);

    /// <summary>The gym tokenizer, ready to use.</summary>
    public static Qwen3Tokenizer Create() => SmallTokenizer.Create(Words);
}
