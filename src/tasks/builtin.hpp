// Constructors and registry entries of the built-in tasks.
#pragma once

#include <memory>

#include "dalesim/task.hpp"

namespace dalesim {

TaskInfo adding_task_info();
std::unique_ptr<Task> make_adding_task(const TaskConfig& cfg);

TaskInfo perceptual_dm_task_info();
std::unique_ptr<Task> make_perceptual_dm_task(const TaskConfig& cfg, double dt);

}  // namespace dalesim
