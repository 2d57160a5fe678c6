# cmake/version.cmake - HR_VERSION: the version a build reports (--version, the
# log's first line, /healthz, hookrelay_build_info, the forwarder's User-Agent)
# and its Debian package carries.
#
# The release is project(VERSION). From a git checkout the commits up to HEAD
# and HEAD's id follow it: 0.1.0+git.612.9ccf5e7. Two builds of different
# commits then say which is which, and a newer commit's package upgrades an
# older one's (dpkg compares 612 and 613 as numbers); with one version for
# every build, `apt install ./hookrelay_0.1.0-1_amd64.deb` over an older build
# said "already the newest version" and replaced nothing. A source tree without
# git (a tarball) reports the release alone.
#
# It is read when CMake configures; a commit or a checkout reconfigures the
# build (HEAD and its branch's ref are configure dependencies).

set(HR_VERSION "${PROJECT_VERSION}")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${CMAKE_SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-list --count HEAD
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" RESULT_VARIABLE hr_git_rc1
    OUTPUT_VARIABLE hr_git_count OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --short=7 HEAD
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" RESULT_VARIABLE hr_git_rc2
    OUTPUT_VARIABLE hr_git_id OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(hr_git_rc1 EQUAL 0 AND hr_git_rc2 EQUAL 0 AND hr_git_count MATCHES "^[0-9]+$")
    set(HR_VERSION "${PROJECT_VERSION}+git.${hr_git_count}.${hr_git_id}")
  endif()
  # HEAD, and the branch it names: a commit rewrites the branch's ref, not HEAD.
  execute_process(COMMAND "${GIT_EXECUTABLE}" symbolic-ref -q HEAD
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" OUTPUT_VARIABLE hr_git_branch
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  foreach(hr_git_ref HEAD ${hr_git_branch})
    execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path "${hr_git_ref}"
      WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" OUTPUT_VARIABLE hr_git_path
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(hr_git_path AND NOT IS_ABSOLUTE "${hr_git_path}")
      set(hr_git_path "${CMAKE_SOURCE_DIR}/${hr_git_path}")
    endif()
    if(hr_git_path AND EXISTS "${hr_git_path}")
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${hr_git_path}")
    endif()
  endforeach()
endif()
message(STATUS "hookrelay version ${HR_VERSION}")
