# packaging/deb.cmake - `cmake --build build --target package` makes a Debian package
# (CPack DEB) of exactly what `cmake --install` installs: both binaries, the units,
# the configuration (a conffile: dpkg keeps local edits on upgrade), the man pages
# and the documents. Included from the top CMakeLists.txt after the install rules.
#
# The package is only right for the /usr prefix (Debian policy: nothing in
# /usr/local; the unit's paths are fixed when configuring), so packaging a build
# configured for another prefix stops with an error instead of shipping it.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hookrelay)
set(CPACK_PACKAGE_VENDOR "hookrelay")
set(HR_DEB_MAINTAINER "hookrelay maintainers <maintainers@hookrelay.example.org>"
  CACHE STRING "Maintainer: of the Debian package (and its changelog)")
set(CPACK_PACKAGE_CONTACT "${HR_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "webhook receiver for AI-avatar and video-bot providers")
set(CPACK_PACKAGE_DESCRIPTION "hookrelay accepts Tavus, PailFlow and AgentHuman callbacks,
validates them against typed event structures, stores them durably in
SQLite before answering, forwards them to downstream URLs with retries
and signatures, and serves them over a REST API and the hookctl client.")
set(CPACK_PACKAGE_VERSION "${HR_VERSION}") # cmake/version.cmake
set(CPACK_PACKAGE_FILE_NAME "${CPACK_PACKAGE_NAME}_${HR_VERSION}-1_${CMAKE_SYSTEM_PROCESSOR}")
# Absolute install destinations (GNUInstallDirs full paths, /etc, the unit
# directory) are staged through DESTDIR rather than under the prefix.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binaries (dpkg-shlibdeps); systemd for the units.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd (>= 252)")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)

# conffiles names the configuration at its installed path; the maintainer scripts
# reload systemd and stop the service on removal (packaging/deb/*).
configure_file(${CMAKE_CURRENT_LIST_DIR}/deb/conffiles.in ${CMAKE_BINARY_DIR}/deb/conffiles @ONLY)
foreach(script postinst prerm postrm)
  file(COPY ${CMAKE_CURRENT_LIST_DIR}/deb/${script} DESTINATION ${CMAKE_BINARY_DIR}/deb
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
      WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deb/conffiles
  ${CMAKE_BINARY_DIR}/deb/postinst ${CMAKE_BINARY_DIR}/deb/prerm ${CMAKE_BINARY_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Debian wants the licence as .../copyright and a compressed changelog.Debian.
install(FILES ${CMAKE_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_FULL_DOCDIR}
  RENAME copyright)
string(TIMESTAMP HR_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC) # honours SOURCE_DATE_EPOCH
configure_file(${CMAKE_CURRENT_LIST_DIR}/deb/changelog.in ${CMAKE_BINARY_DIR}/deb/changelog.Debian
  @ONLY)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/deb/changelog.Debian.gz
  COMMAND gzip -9nf -k ${CMAKE_BINARY_DIR}/deb/changelog.Debian
  DEPENDS ${CMAKE_BINARY_DIR}/deb/changelog.Debian VERBATIM)
add_custom_target(deb_changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/deb/changelog.Debian.gz)
install(FILES ${CMAKE_BINARY_DIR}/deb/changelog.Debian.gz DESTINATION ${CMAKE_INSTALL_FULL_DOCDIR})

configure_file(${CMAKE_CURRENT_LIST_DIR}/deb/check_prefix.cmake.in
  ${CMAKE_BINARY_DIR}/deb/check_prefix.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_BINARY_DIR}/deb/check_prefix.cmake)
include(CPack)
