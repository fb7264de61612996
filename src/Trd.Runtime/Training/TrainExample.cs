namespace Trd.Runtime.Training;

/// <summary>
/// One sequence to distil on: the trajectory y (y_o or y_r, chat-template end-of-turn included when generated) and
/// the two contexts it is scored under. The student sees (x, y_&lt;t) through <see cref="StudentContext"/>; the
/// teacher sees its recipe's context (Trd.Core's <c>Recipe.TeacherContext</c>) through <see cref="TeacherContext"/>.
/// </summary>
/// <param name="Id">The problem's id.</param>
/// <param name="StudentContext">The student's templated prompt ids.</param>
/// <param name="TeacherContext">The teacher's templated prompt ids.</param>
/// <param name="Trajectory">The trajectory's ids, trained on every position.</param>
/// <param name="RolloutCorrect">The stage-1 outcome b_i (D^correct / D^incorrect split, App. C.5).</param>
/// <param name="Source">"y_o" or "y_r": what the trajectory is.</param>
public sealed record TrainExample(string Id, int[] StudentContext, int[] TeacherContext, int[] Trajectory, bool RolloutCorrect, string Source);
