using Trd.Runtime.Generation;
using Trd.Runtime.Models;
using TorchSharp;

namespace Trd.Runtime.Pipeline;

/// <summary>One generated continuation: its token ids (the stop token included when it stopped) and whether it hit the budget.</summary>
public sealed record Generated(int Prompt, int[] Tokens, bool Truncated);

/// <summary>
/// The generation seam (issue 4, §12): the stages ask for continuations of token-id prompts and never see the model.
/// The default is the in-process TorchSharp sampler; an OpenAI-compatible client (vLLM, SGLang), which accepts
/// token-id prompts, can implement this interface without touching the stages.
/// </summary>
public interface ITrajectoryGenerator
{
    /// <summary>What generates (for logs and manifests).</summary>
    string Name { get; }

    /// <summary><see cref="SamplingOptions.SamplesPerPrompt"/> continuations of each prompt, prompt-major.</summary>
    IReadOnlyList<Generated> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options);
}

/// <summary>
/// The in-process sampler (KV cache, <see cref="Sampler.Generate"/>). <paramref name="adaptersOff"/> samples from the
/// base weights with LoRA adapters switched off for the call (OPSD's refinement: the student's own backbone).
/// </summary>
public sealed class TorchGenerator(Qwen3ForCausalLM model, string name, bool adaptersOff = false) : ITrajectoryGenerator
{
    /// <inheritdoc/>
    public string Name { get; } = name;

    /// <inheritdoc/>
    public IReadOnlyList<Generated> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options)
    {
        var wasTraining = model.training;
        model.eval();
        if (adaptersOff) model.SetAdaptersEnabled(false);
        try
        {
            return Sampler.Generate(model, prompts, options).Select(s => new Generated(s.Prompt, s.Tokens, s.Truncated)).ToArray();
        }
        finally
        {
            if (adaptersOff) model.SetAdaptersEnabled(true);
            if (wasTraining) model.train();
        }
    }
}
