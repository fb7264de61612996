namespace Trd.Runtime.Tokenization;

/// <summary>
/// A token added on top of the BPE vocabulary (tokenizer.json's <c>added_tokens</c>): always one id, matched in
/// the raw text before normalisation. <paramref name="Special"/> ones are dropped by
/// <c>Decode(…, skipSpecialTokens: true)</c>; Qwen3 marks <c>&lt;think&gt;</c> and the tool tags not special.
/// </summary>
/// <param name="Id">The token's id.</param>
/// <param name="Content">Its text, e.g. <c>&lt;|im_end|&gt;</c>.</param>
/// <param name="Special">Whether tokenizer.json marks it <c>special</c>.</param>
public sealed record AddedToken(int Id, string Content, bool Special);
