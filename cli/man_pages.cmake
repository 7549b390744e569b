# Man pages from the --help texts (help2man): vae(1), and vae-<command>(1) for every
# command `vae --help` lists. Run by the build (target vae_man):
#   cmake -DVAE=build/vae -DHELP2MAN=/usr/bin/help2man -DVERSION=0.1.0 -DOUT=build/man -P cli/man_pages.cmake
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${VAE} --help OUTPUT_VARIABLE usage RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${VAE} --help failed")
endif()
string(REGEX MATCHALL "\n  [a-z-]+  +[^\n]*" lines "${usage}")
set(see_also)
foreach(line ${lines})
  string(REGEX REPLACE "^\n  ([a-z-]+) .*" "\\1" cmd "${line}")
  string(REGEX REPLACE "^\n  [a-z-]+ +" "" summary "${line}")
  # help2man runs "PROGRAM --help"; a one-line wrapper makes "vae CMD" a program of its own.
  set(wrapper ${OUT}/vae-${cmd})
  file(WRITE ${wrapper} "#!/bin/sh\nexec '${VAE}' ${cmd} \"$@\"\n")
  file(CHMOD ${wrapper} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
  execute_process(COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1
                          "--version-string=${VERSION}" "--name=${summary}" -o ${OUT}/vae-${cmd}.1 ${wrapper}
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "help2man failed for vae ${cmd}")
  endif()
  file(REMOVE ${wrapper})
  list(APPEND see_also "vae-${cmd}(1)")
endforeach()
list(JOIN see_also ", " see_also)
file(WRITE ${OUT}/see_also.h2m "[SEE ALSO]\n${see_also}\n")
execute_process(COMMAND ${HELP2MAN} --no-info --section=1 "--name=variational autoencoders: train, sweep, query, tabulate"
                        --include=${OUT}/see_also.h2m -o ${OUT}/vae.1 ${VAE} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed for vae")
endif()
