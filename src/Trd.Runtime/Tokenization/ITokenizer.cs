namespace Trd.Runtime.Tokenization;

/// <summary>
/// Text ↔ token ids, as generation and training need them. Implemented by <see cref="Qwen3Tokenizer"/> (the
/// real Qwen3 vocabulary) and by small tokenizers for tests and toy tasks.
/// </summary>
public interface ITokenizer
{
    /// <summary>
    /// The number of ids this tokenizer can produce: one more than its largest id, added tokens included. A
    /// model's embedding may have more rows (Qwen3's has 151,936 for 151,669 ids).
    /// </summary>
    int VocabularySize { get; }

    /// <summary>
    /// Encodes text. Added tokens written in the text (<c>&lt;|im_start|&gt;</c>, <c>&lt;think&gt;</c>, …) become
    /// their own ids, as Hugging Face's tokenizers do; no BOS/EOS is added.
    /// </summary>
    int[] Encode(string text);

    /// <summary>
    /// Decodes ids to text. Added tokens are written as their text unless <paramref name="skipSpecialTokens"/>
    /// drops those marked special (as Hugging Face's <c>skip_special_tokens</c>). An id outside
    /// [0, <see cref="VocabularySize"/>) is an <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false);

    /// <summary>The vocabulary entry of an id (for byte-level BPE, in its byte-to-character alphabet).</summary>
    string IdToToken(int id);

    /// <summary>The id of a vocabulary entry or added token, if there is one.</summary>
    bool TryGetId(string token, out int id);

    /// <summary>The end-of-turn id a chat model emits when its answer is done (Qwen3: <c>&lt;|im_end|&gt;</c>).</summary>
    int EndOfTurnId { get; }

    /// <summary>The end-of-text id, also used for padding (Qwen3: <c>&lt;|endoftext|&gt;</c>).</summary>
    int EndOfTextId { get; }

    /// <summary>The ids that end a generated sequence: <see cref="EndOfTurnId"/> and <see cref="EndOfTextId"/>.</summary>
    IReadOnlyList<int> StopIds { get; }

    /// <summary>
    /// The chat template prompts for this tokenizer's model are rendered with (<see cref="ChatTemplate.Encode"/>): the
    /// one its model directory declares (<see cref="ChatTemplateFile"/>), as Hugging Face keeps the template with the
    /// tokenizer.
    /// </summary>
    ChatTemplateKind ChatTemplate { get; }
}
