/* placeholder: filled in by its module */
#include "internal.h"
