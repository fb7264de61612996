namespace Trd.Runtime.Tokenization;

/// <summary>Who speaks a chat turn.</summary>
public enum ChatRole
{
    /// <summary>Instructions before the conversation (Qwen3 renders it first if it is the first message).</summary>
    System,

    /// <summary>The user's turn.</summary>
    User,

    /// <summary>The model's turn.</summary>
    Assistant,
}

/// <summary>One chat turn.</summary>
/// <param name="Role">Who speaks.</param>
/// <param name="Content">The text. An assistant's may hold its reasoning as <c>&lt;think&gt;…&lt;/think&gt;</c>.</param>
/// <param name="Reasoning">An assistant's reasoning given apart (Hugging Face's <c>reasoning_content</c>); when
/// set, <paramref name="Content"/> is taken as the answer alone.</param>
public sealed record ChatMessage(ChatRole Role, string Content, string? Reasoning = null)
{
    /// <summary>A system turn.</summary>
    public static ChatMessage System(string content) => new(ChatRole.System, content);

    /// <summary>A user turn.</summary>
    public static ChatMessage User(string content) => new(ChatRole.User, content);

    /// <summary>An assistant turn.</summary>
    public static ChatMessage Assistant(string content, string? reasoning = null) => new(ChatRole.Assistant, content, reasoning);
}
