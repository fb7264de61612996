using Trd.Core;
using Trd.Runtime.Logging;
using Trd.Runtime.Models;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Tokenization;
using Trd.Runtime.Training;
using TorchSharp;
using static TorchSharp.torch;
using GymTask = Trd.Core.Gym;

namespace Trd.Runtime.Gym;

/// <summary>One logged pretraining step.</summary>
public sealed record PretrainStep(
    [property: System.Text.Json.Serialization.JsonPropertyName("step")] int Step,
    [property: System.Text.Json.Serialization.JsonPropertyName("loss")] double Loss,
    [property: System.Text.Json.Serialization.JsonPropertyName("learning_rate")] double LearningRate,
    [property: System.Text.Json.Serialization.JsonPropertyName("solve_accuracy")] double? SolveAccuracy = null);

/// <summary>
/// Supervised pretraining of a gym model on <see cref="GymData"/>'s stream: next-token cross-entropy on the
/// response tokens (the templated prompt is context only; <c>&lt;|im_end|&gt;</c> is a target), full parameters,
/// the runtime's own AdamW with linear warmup and cosine decay (Trd.Core.Schedule), global-norm clipping at 1.
/// </summary>
public static class Pretrainer
{
    /// <summary>Trains <paramref name="model"/> in place; returns the loss every <paramref name="logEvery"/> steps.</summary>
    public static IReadOnlyList<PretrainStep> Train(Qwen3ForCausalLM model, ITokenizer tokenizer, GymModelRecipe recipe,
        IProgressSink? progress = null, int logEvery = 50, int validateEvery = 0, Func<Qwen3ForCausalLM, double>? validate = null)
    {
        var builder = new PromptBuilder(tokenizer, enableThinking: false);
        var rng = new GymTask.Rng((ulong)recipe.Seed * 0x9E3779B97F4A7C15UL + 17);
        var device = model.OutputWeight.device;
        var parameters = model.named_parameters().Where(p => p.parameter.requires_grad).ToArray();
        using var adam = new AdamW(parameters, new AdamWOptions(WeightDecay: 0.01));
        var warmup = Schedule.WarmupSteps(recipe.WarmupRatio, recipe.Steps);
        var tracker = new ProgressTracker($"pretrain {recipe.Name}", recipe.Steps, progress);
        var log = new List<PretrainStep>();
        double running = double.NaN;
        model.train();
        for (var step = 0; step < recipe.Steps; step++)
        {
            using var scope = NewDisposeScope();
            var task = GymData.DrawTask(rng, recipe);
            var batch = Enumerable.Range(0, recipe.BatchSize).Select(_ => GymData.Draw(rng, recipe, task)).Select(e =>
            {
                var prompt = builder.Encode(e.UserMessage);
                var response = tokenizer.Encode(e.Response).Append(tokenizer.EndOfTurnId).ToArray();
                return (Prompt: prompt, Ids: prompt.Concat(response).ToArray());
            }).ToArray();
            var width = batch.Max(b => b.Ids.Length);
            var ids = new long[batch.Length * width];
            var mask = new float[batch.Length * (width - 1)];       // mask[b, t] = 1 when token t+1 is a response token
            for (var b = 0; b < batch.Length; b++)
            {
                for (var t = 0; t < width; t++) ids[b * width + t] = t < batch[b].Ids.Length ? batch[b].Ids[t] : tokenizer.EndOfTextId;
                for (var t = batch[b].Prompt.Length - 1; t < batch[b].Ids.Length - 1; t++) mask[b * (width - 1) + t] = 1;
            }
            var input = tensor(ids, dtype: ScalarType.Int64, device: device).view(batch.Length, width);          // [B, T]
            var weights = tensor(mask, device: device).view(batch.Length, width - 1);                             // [B, T-1]
            var logits = model.Forward(input.narrow(1, 0, width - 1)).to(ScalarType.Float32);                     // [B, T-1, V], float32 whatever the model's dtype
            var logProbs = logits.log_softmax(-1).gather(-1, input.narrow(1, 1, width - 1).unsqueeze(-1)).squeeze(-1); // [B, T-1]
            var loss = -(logProbs * weights).sum() / weights.sum();
            loss.backward();
            adam.ClipGradients(1.0);
            var lr = Schedule.LearningRate(recipe.LearningRate, warmup, recipe.Steps, 0.1, step);
            adam.Step(lr);
            adam.ZeroGrad();
            var value = loss.item<float>();
            running = double.IsNaN(running) ? value : 0.95 * running + 0.05 * value;
            if (!double.IsFinite(value)) throw new InvalidOperationException($"gym model '{recipe.Name}': the loss is {value} at step {step}");
            double? accuracy = null;
            if (validate is not null && validateEvery > 0 && (step + 1) % validateEvery == 0 && step + 1 < recipe.Steps)
            {
                model.eval();
                accuracy = validate(model);
                model.train();
            }
            if (step % logEvery == 0 || step == recipe.Steps - 1 || accuracy is not null) log.Add(new PretrainStep(step, running, lr, accuracy));
            tracker.Advance(1, (long)weights.sum().item<float>());
        }
        model.eval();
        return log;
    }
}
