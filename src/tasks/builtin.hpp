// Constructors and registry entries of the built-in tasks.
#pragma once

#include <memory>

#include "dalesim/task.hpp"

namespace dalesim {

TaskInfo adding_task_info();
std::unique_ptr<Task> make_adding_task(const TaskConfig& cfg);

TaskInfo perceptual_dm_task_info();
std::unique_ptr<Task> make_perceptual_dm_task(const TaskConfig& cfg, double dt);

TaskInfo context_dm_task_info();
std::unique_ptr<Task> make_context_dm_task(const TaskConfig& cfg, double dt);

TaskInfo delay_match_task_info();
std::unique_ptr<Task> make_delay_match_task(const TaskConfig& cfg, double dt);

TaskInfo delay_compare_task_info();
std::unique_ptr<Task> make_delay_compare_task(const TaskConfig& cfg, double dt);

TaskInfo go_nogo_task_info();
std::unique_ptr<Task> make_go_nogo_task(const TaskConfig& cfg, double dt);

TaskInfo ready_set_go_task_info();
std::unique_ptr<Task> make_ready_set_go_task(const TaskConfig& cfg, double dt);

TaskInfo copy_task_info();
std::unique_ptr<Task> make_copy_task(const TaskConfig& cfg);

TaskInfo seqmnist_task_info();
std::unique_ptr<Task> make_seqmnist_task(const TaskConfig& cfg);

TaskInfo file_task_info();
std::unique_ptr<Task> make_file_task(const TaskConfig& cfg);

}  // namespace dalesim
