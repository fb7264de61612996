namespace Trd.Runtime.Tokenization;

/// <summary>
/// The chat templates Trd renders (in code, <see cref="ChatTemplate"/>), as a model directory declares them in
/// <c>chat_template.jinja</c> or tokenizer_config.json's <c>chat_template</c> (<see cref="ChatTemplateFile"/>). All are
/// ChatML (<c>&lt;|im_start|&gt;role\n…&lt;|im_end|&gt;\n</c>, a leading system turn first); they differ in what they
/// do with reasoning:
/// <list type="table">
/// <listheader><term>kind</term><description>generation prompt; earlier assistant turns</description></listheader>
/// <item><term><see cref="Qwen3"/></term><description><c>&lt;|im_start|&gt;assistant\n</c>, plus an empty think
/// block when <c>enable_thinking</c> is false; reasoning (up to <c>&lt;/think&gt;</c>) kept only after the last user
/// turn</description></item>
/// <item><term><see cref="Qwen3Instruct2507"/></term><description><c>&lt;|im_start|&gt;assistant\n</c> always; content
/// verbatim, no reasoning at all</description></item>
/// <item><term><see cref="Qwen3Thinking2507"/></term><description><c>&lt;|im_start|&gt;assistant\n&lt;think&gt;\n</c>
/// always; reasoning as <see cref="Qwen3"/></description></item>
/// </list>
/// The 2507 templates never read <c>enable_thinking</c>; Hugging Face ignores it for them and so does Trd (Qwen's
/// quickstart for the 2507 models: the Instruct model "supports only non-thinking mode … specifying
/// enable_thinking=False is no longer required or supported"; the Thinking template "automatically includes
/// &lt;think&gt;", so the model's output holds only the closing <c>&lt;/think&gt;</c>).
/// </summary>
public enum ChatTemplateKind
{
    /// <summary>
    /// Qwen3's original hybrid-thinking template (Qwen3-0.6B … Qwen3-235B-A22B, 2025-04, and the later revision that
    /// reads non-string contents as empty): <c>enable_thinking</c> switches thinking per prompt. Also the template of a
    /// model directory that declares none (<see cref="ChatTemplateFile"/>).
    /// </summary>
    Qwen3,

    /// <summary>Qwen3-2507 Instruct (e.g. Qwen3-4B-Instruct-2507, Qwen3-30B-A3B-Instruct-2507): no thinking.</summary>
    Qwen3Instruct2507,

    /// <summary>Qwen3-2507 Thinking (e.g. Qwen3-4B-Thinking-2507): always thinks; the prompt opens the think block.</summary>
    Qwen3Thinking2507,
}
