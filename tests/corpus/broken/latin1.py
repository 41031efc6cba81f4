# Réponse de l'étudiant
__assignment__ = 'backprop'
import numpy as np
