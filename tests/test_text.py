"""Tests for grader.checks.text: reading answers, loading rubrics, scoring text answers.

``RUBRICS`` holds the rubric of every text question in the course's assignments, written in
exactly the structure ``Rubric.from_spec`` takes: the list that an assignment's TOML
``[[questions.rubric]]`` tables parse to (``test_rubrics_survive_toml`` shows them as TOML).
Each question is tested with the seed student's own answer, a paraphrase in other words and
word order, a negated answer, a bare keyword list and an off-topic answer.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grader.checks.text as text_module
from grader.checks.text import (
    KEYWORD_CREDIT,
    REVIEW_BELOW,
    Concept,
    Rubric,
    RubricItem,
    TextScore,
    score_text,
    to_details,
)
from grader.checks.text._reading import (
    FUNCTION_WORDS,
    normalise,
    read_answer,
    split_sentences,
    tokenize,
)
from grader.checks.text._rubric import compile_synonym
from grader.checks.text._scoring import _starts, _word_matches
from grader.errors import SpecError
from grader.results import RubricMatch

# Points per text question, from the assignments' tables.
QUESTION_POINTS = {
    "normal-equation 1": 2,
    "normal-equation 7": 2,
    "backprop 1": 2,
    "update-rules 2": 2,
    "rnn-lstm 1a": 2,
    "rnn-lstm 1b": 2,
    "rnn-lstm 1c": 2,
    "rnn-lstm 1d": 2,
    "rnn-lstm 1e": 1,
    "rnn-lstm 2a": 2,
    "rnn-lstm 2b": 2,
}

RUBRICS: dict[str, list[dict[str, Any]]] = {
    "normal-equation 1": [
        {
            "id": "linear",
            "points": 0.5,
            "description": "a linear relation ŷ = Xβ between the features and the target",
            "concepts": [
                [
                    "linear* + relation*|combination*|function*|depend*|map*|proportional|"
                    "hyperplane|line|sum",
                    "yhat|y + x beta",
                    "weight* + sum + feature*|input*|variable*",
                ],
            ],
        },
        {
            "id": "least-squares",
            "points": 1,
            "description": "β minimises the squared error (the least-squares cost)",
            "concepts": [
                "least squares|sum of squares|square*|mse|ols|residual sum|norm squared",
                "minim*|smallest|lowest|optimi*|reduc*|best fit + error*|cost*|loss*|residual*|"
                "objective|j|square*|distance*",
            ],
        },
        {
            "id": "predict",
            "points": 0.5,
            "description": "the fitted β predicts the target for unseen inputs",
            "concepts": [
                [
                    "predict*|forecast*|estimat*|appl* + unseen|new|future|test|unknown|novel|"
                    "unlabel*",
                    "generaliz*",
                ],
            ],
        },
    ],
    "normal-equation 7": [
        {
            "id": "cost",
            "points": 1,
            "description": (
                "solving/inverting XᵀX costs O(p³) (plus O(np²) to form it), too slow for many "
                "features"
            ),
            "concepts": [
                "invert*|inverse|inversion|solv*|factori*|decompos*|normal equation|closed form|"
                "direct* + expensive|cost*|slow*|complex*|heavy|time consuming|intensive|demanding|"
                "burden*|lot of computation*|lots of computation*|much computation*|"
                "more computation*|many computation*|heavy computation*|number of computation*|"
                "amount of computation*|memory and computation*|computation* cost*|"
                "O(p^3)|O(p³)|cubic|cube|intractable|impractical|infeasible|long",
                [
                    "many|large|high*|huge|big|grow*|lot|thousand*|million* + feature*|"
                    "dimension*|parameter*|p|variable*|column*|predictor*",
                    "O(p^3)|cubic|p^3|O(n p^2)",
                ],
            ],
        },
        {
            "id": "stability",
            "points": 0.5,
            "description": (
                "XᵀX can be singular or ill-conditioned, so the direct solve is numerically "
                "unstable"
            ),
            "concepts": [
                [
                    "singular|ill condition*|badly condition*|poorly condition*|"
                    "condition number|collinear*|multicollinear*|unstabl*|instabilit*|"
                    "round* error*|rank deficien*",
                    "not|non + invertible",
                    "numeric* + unstabl*|instabilit*|error*|precision|problem*|issue*",
                    "inverse + not + exist*",
                ],
            ],
        },
        {
            "id": "scale",
            "points": 0.5,
            "description": (
                "iterative/stochastic methods scale to huge or streaming data and work for models "
                "with no closed form"
            ),
            "concepts": [
                [
                    "scal* + data*|sample*|n|example*|observation*|row*",
                    "stream*|online|mini batch*|minibatch*|out of core|batch* + data*|memory|"
                    "sample*|example*",
                    "huge|large|massive|big|many + data*|sample*|n|example*|observation*|row*",
                    "memory + fit*|hold|store|load|all",
                    "no|without|lack* + closed form|analytic*|formula",
                    "nonlinear|non linear|logistic|neural network*|other model*"
                    " + gradient descent|iterativ*|work*|appl*|general*",
                ],
            ],
        },
    ],
    "backprop 1": [
        {
            "id": "reuse",
            "points": 1,
            "description": (
                "the chain rule is applied layer by layer, reusing each upstream gradient (error "
                "term) instead of recomputing it"
            ),
            "concepts": [
                [
                    "chain rule",
                    "chain + rule*",
                ],
                [
                    "reus*|re use|shar*|recycl*|memo*|store*|cach*|sav*|keep* + gradient*|"
                    "error*|delta*|derivativ*|upstream|result*|term*|computation*|value*",
                    "not|no|without|instead of|rather than|avoid*|never|once + recomput*|"
                    "recalculat*|redundan*|repeat*|duplicat*|again",
                    "dynamic programming",
                    "each|every + layer* + from|using|previous|next|later|upstream|above",
                ],
            ],
        },
        {
            "id": "passes",
            "points": 0.5,
            "description": (
                "one forward pass caches activations and one backward pass yields every gradient, "
                "at a cost comparable to the forward pass (numerical differentiation needs a pass "
                "per parameter)"
            ),
            "concepts": [
                "forward + pass*|propagat*|sweep*|phase|computation|step",
                "backward*|revers* + pass*|sweep*|phase|mode|step",
                [
                    "all|every|each + gradient*|derivativ*|parameter*|weight* + 1|single|same",
                    "cost*|time|expensive|work|effort + same|comparable|similar|proportional|"
                    "order|twice|constant|linear|like",
                    "numeric*|finite difference*|perturb* + each|every|per|separately"
                    " + parameter*|weight*",
                    "1|single|two|2 + pass*|sweep*",
                ],
            ],
            "need": 2,
        },
        {
            "id": "local",
            "points": 0.5,
            "description": (
                "a parameter's gradient is its error term times that parameter's input"
            ),
            "concepts": [
                [
                    "error|delta|upstream + input*|activation* + product|multipl*|times",
                    "gradient*|derivativ* + error|delta|upstream + input*|activation*",
                ],
            ],
        },
    ],
    "update-rules 2": [
        {
            "id": "step",
            "points": 1,
            "description": "α scales the step along the negative gradient",
            "concepts": [
                [
                    "step*|update*|move*|jump* + size|length|big|far|much|scal*|magnitude|large",
                    "scal*|multipl*|control*|determin*|set*|decid* + step*|update*|gradient*|"
                    "move*|change*",
                ],
            ],
        },
        {
            "id": "too-large",
            "points": 0.5,
            "description": "too large overshoots, oscillates or diverges",
            "concepts": [
                "large|big|high|great*|huge + overshoot*|overshot|oscillat*|diverg*|unstabl*|"
                "instabilit*|explod*|blow* up|bounc*|zig zag|jump* over|miss*|skip*|"
                "never converg*|not converg*|fail* to converg*",
            ],
        },
        {
            "id": "too-small",
            "points": 0.5,
            "description": "too small converges slowly or stalls",
            "concepts": [
                "small|low|tiny|little + slow*|long|many step*|many iteration*|stuck|stall*|"
                "forever|ages|creep*|crawl*|local minim*|tak* time|barely|hardly",
            ],
        },
    ],
    "rnn-lstm 1a": [
        {
            "id": "sequence",
            "points": 0.75,
            "description": (
                "processes a sequence step by step rather than all inputs at once and independently"
            ),
            "concepts": [
                [
                    "step by step|1 at a time|1 by 1|sequential*|time step*|in order|successiv*|"
                    "word by word|token by token|element by element|each step|over time",
                    "sequence*|series + process*|tak*|read*|handl*|consum*|feed*|element*|"
                    "order*|input*",
                ],
            ],
        },
        {
            "id": "state",
            "points": 0.75,
            "description": "keeps a hidden state that acts as memory of earlier inputs",
            "concepts": [
                [
                    "hidden|internal|recurrent + state*|memory|vector",
                    "memory|remember*|memoriz* + previous|earlier|past|prior|before|history|"
                    "preceding|context|input*",
                    "feedback|loop*|cycle*|recurren* + connection*|output*",
                    "previous|past|earlier + output*|state* + input*|fed|feed*|pass*",
                ],
            ],
        },
        {
            "id": "shared",
            "points": 0.5,
            "description": "shares the same weights across time steps",
            "concepts": [
                [
                    "shar*|same|tied|tie*|reus*|common|identical + weight*|parameter*|matri*",
                ],
            ],
        },
    ],
    "rnn-lstm 1b": [
        {
            "id": "product",
            "points": 1,
            "description": (
                "backpropagation through time multiplies many factors/Jacobians, so gradients "
                "shrink exponentially with distance"
            ),
            "names": [
                "vanishing gradient* problem*",
                "vanishing gradient* issue*",
                "problem* of vanishing gradient*",
            ],
            "concepts": [
                [
                    "gradient*|error*|signal* + vanish*|shrink*|decreas*|decay*|diminish*|tiny|"
                    "disappear*|0|fall*|drop|die|weaken*|becom* small*|get* small*|"
                    "grow* small*|turn* small*|is small*|are small*|too small|very small|"
                    "really small|extremely small|vanishingly small|exponentially small*|"
                    "small* and small*",
                    "gradient*|error*|signal* + multipl*|product*|times|scal* + small* factor*|"
                    "small* number*|small* value*|small* weight*|small* jacobian*|"
                    "small* derivativ*|small* term*|small* eigenvalue*|less than 1|"
                    "smaller than 1|below 1",
                ],
                [
                    "multipl*|product*|repeat*|many|chain*|successiv* + factor*|jacobian*|"
                    "matri*|step*|derivativ*|weight*|term*|layer*|time*",
                    "exponential*|geometric*",
                    "less than|smaller than|below + 1",
                ],
            ],
        },
        {
            "id": "long-term",
            "points": 1,
            "description": "long-term dependencies are then not learned",
            "concepts": [
                [
                    "long + term|range|distance|sequence* + depend*|relation*|memory|context|"
                    "information|pattern*",
                    "distant|far|earlier|early|past|previous|old|first|long ago + input*|step*|"
                    "word*|token*|information|event*",
                    "not|unable|fail*|hard|difficult|struggl* + learn*|captur*|remember*|model*"
                    " + long|distant|far|earl*",
                ],
            ],
        },
    ],
    "rnn-lstm 1c": [
        {
            "id": "gates",
            "points": 1,
            "description": (
                "forget, input and output gates control what is kept, written and exposed"
            ),
            "concepts": [
                [
                    "forget + input + output",
                    "gate* + forget* + keep*|writ*|add*|remov*|eras*|expos*|output*|read*|store*",
                ],
                "gate* + control*|regulat*|decid*|determin*|select*|filter*|manag*|keep*|"
                "retain*|remov*|add*|writ*|read*|expos*|flow*|let*",
            ],
        },
        {
            "id": "additive",
            "points": 1,
            "description": (
                "the cell state is updated additively, giving gradients a path that does not shrink"
            ),
            "names": [
                "vanishing gradient* problem*",
                "vanishing gradient* issue*",
                "problem* of vanishing gradient*",
            ],
            "concepts": [
                [
                    "cell|memory + additiv*|sum|summation|linear*|increment*|add* to|"
                    "updat* by add*|by addition|through addition|via addition|add* information|"
                    "add* value*|add* candidate*|add* new information|add* new value*|"
                    "add* new candidate*",
                    "cell|memory + plus + old|previous|prior|last|earlier",
                    "gradient*|error* + path|route|highway|shortcut|carousel|uninterrupt*|"
                    "unchanged|constant|preserv*|intact|undiminish*|unimpeded|unhindered|freely|"
                    "not shrink*|not vanish*|not decay*|without shrink*|without vanish*|"
                    "without decay*|without get* smaller|not get* smaller|without becom* smaller|"
                    "without being multipl*|not multipl* again",
                    "constant error carousel",
                ],
            ],
        },
    ],
    "rnn-lstm 1d": [
        {
            "id": "derivative",
            "points": 1,
            "description": (
                "∂c_t/∂c_{t−1} = f_t: the cell-state gradient is multiplied by the forget gate"
            ),
            "concepts": [
                [
                    "∂c_t/∂c_{t-1}|dc_t/dc_{t-1} + f|forget|f t",
                    "derivativ*|gradient*|jacobian* + cell|c t + f|forget|f t",
                    "c_t = f_t c_{t-1}|c t f t c t 1",
                    "cell|c t|memory + multipl*|scal*|times|product|factor + f|forget|f t",
                ],
            ],
        },
        {
            "id": "unchanged",
            "points": 1,
            "description": "with f_t ≈ 1 the gradient passes through many steps nearly unchanged",
            "concepts": [
                "forget|f|f t + 1|open",
                [
                    "gradient*|error*|signal* + unchanged|intact|preserv*|undiminish*|constant|"
                    "same|not vanish*|not shrink*|not decay*|without vanish*|without shrink*|"
                    "many|long|multiple|far|all",
                ],
            ],
        },
    ],
    "rnn-lstm 1e": [
        {
            "id": "ann",
            "points": 0.5,
            "description": "a sensible ANN example: static or tabular prediction",
            "concepts": [
                "ann|feed forward|feedforward|mlp|fully connected|perceptron*|dense + tabular|"
                "image*|classif*|regress*|recommend*|price*|credit|spam|digit*|house*|fraud|"
                "diagnos*|churn|static|fixed size|score*|predict*|recogni*",
            ],
        },
        {
            "id": "sequences",
            "points": 0.5,
            "description": (
                "an RNN example on short sequences (next-word prediction) and an LSTM example on "
                "long-range sequences (translation, long documents, speech)"
            ),
            "concepts": [
                "rnn|recurrent + next word*|next character*|next token*|short|sentiment|"
                "time series|stock*|weather|forecast*|text|sequence*|speech|language|nlp|"
                "autocomplet*|predict*|music",
                "lstm + long*|large|translat*|paragraph*|document*|speech|caption*|story|"
                "stories|essay*|book*|text generat*|language model*|music|handwrit*|chatbot*|"
                "summar*|question answer*",
            ],
        },
    ],
    "rnn-lstm 2a": [
        {
            "id": "dependency",
            "points": 1,
            "description": "a long-term dependency: the answer hinges on a word far back",
            "concepts": [
                [
                    "long + term|range|distance + depend*|context|memory|relation*",
                    "far|earlier|distant|long ago|beginning|start|first|many word* + word*|"
                    "token*|clue|context|information|ireland|back|before",
                    "depend*|hing*|relat*|determin* + ireland|earlier|far|distant|beginning|start",
                ],
            ],
        },
        {
            "id": "struggles",
            "points": 0.5,
            "description": "yes, a plain RNN struggles",
            "names": ["forget gate*"],
            "concepts": [
                [
                    "rnn|vanilla|plain|simple|standard|it + struggl*|difficult*|hard|fail*|"
                    "problem*|trouble|poor*|bad*|forget*|lose*|lost",
                    "can not|not|unable + remember*|captur*|learn*|handl*|connect*|link*|carry*",
                ],
            ],
        },
        {
            "id": "why",
            "points": 0.5,
            "description": "because of vanishing gradients",
            "concepts": [
                [
                    "vanish*|shrink*|diminish*|decay* + gradient*",
                    "gradient* + small|tiny|0|exponential*",
                ],
            ],
        },
    ],
    "rnn-lstm 2b": [
        {
            "id": "cell",
            "points": 1,
            "description": (
                "the cell state carries information across steps and gates add or remove "
                "information"
            ),
            "concepts": [
                "cell|memory + carr*|pass*|flow*|transport*|hold*|stor*|contain*|keep*|"
                "maintain*|retain*|conveyor|remember*|preserv*|propagat*",
                "gate*|gating + add*|remov*|writ*|eras*|delet*|updat*|regulat*|control*|decid*|"
                "discard*|filter*|let*|retain*|keep*",
            ],
        },
        {
            "id": "forget-zero",
            "points": 1,
            "description": (
                "f = 0 erases the previous cell state, e.g. at a sentence or topic boundary"
            ),
            "concepts": [
                "forget|f + 0|closed|shut",
                [
                    "eras*|reset*|discard*|delet*|clear*|wipe*|drop*|remov*|throw* away|ignor*|"
                    "block*|lose*|lost + previous|past|old|before|earlier|history|memory|cell|"
                    "everything|all|prior|context|information|state",
                    "forget* everything|forget* all|forget* entire*|forget* complete*|"
                    "forget* previous|forget* past|complete* forget*",
                    "forgot* + everything|all|entire*|complete*|previous|past",
                    "not|no|nothing + remember*|keep*|retain*|pass*|carr*|kept|through|"
                    "remain*|surviv*",
                    "no memory|no memori*|no previous memory|no previous information|"
                    "no previous state|no past information",
                    "not|no + use|uses|used|using + memory|previous|past|old",
                    "fresh|scratch|clean slate",
                ],
            ],
        },
    ],
}

# The seed student's answers, transcribed from the homework (struck-out words kept as written).
SEED = {
    "normal-equation 1": (
        "We have been given input features as x_i and the output as y_i . Linear regression "
        "assumes that the linear relationship $y_i = \\beta_0 + \\beta_1 x_{i1} + \\beta_2 "
        "x_{i2} + \\dots + \\beta_n x_{in}$ is the solution. In matrix form $\\hat{y} = X\\beta$ "
        "and linear regression is taking the error function as the least squares cost "
        "function. Since this represents the error, it is best to minimise it. This fact is "
        "used by it to learn the pattern and get the best values of β parameters so that the "
        "prediction on an ~~an~~ Unseen input x_j is best. \\hat{y}_j"
    ),
    "normal-equation 7": (
        "We know calculating the inverse is a long and complex method and for higher "
        "dimensions it just becomes more longer and complex and hence computationally "
        "expensive. Iterative methods prevents finding inverse of a matrix and is hence "
        "preferred over solving the normal equation directly."
    ),
    "backprop 1": (
        "Backpropagation involves using the chain rule again and again to calculate the "
        "gradients of the loss function with respect to different parameters in a neural "
        "network. It offers efficient computation because of the structure and functions used "
        "in the neural network. It's just composition of functions (linear or activation) and "
        "hence chain rule means just their products. Also the method is to first do a forward "
        "pass to compute activations and then a backward pass to get the error term (gradient) "
        "so each parameter's gradient is simply the product of the error term and input to "
        "that parameter."
    ),
    "update-rules 2": (
        "$\\alpha \\rightarrow$ determines the size of step taken each time it updates.\n\n"
        "Too large = overshoot\n\n"
        "Too small = slow / may get stuck.\n\n"
        "$\\alpha \\rightarrow$ Learning rate."
    ),
    "rnn-lstm 1a": (
        "ANN takes all input at once and each input is treated independently but in case of "
        "RNN instead of taking the whole sequence at once, it takes them step by step and they "
        'are not treated independently by maintaining a hidden state that acts kind of like "'
        'memory".'
    ),
    "rnn-lstm 1b": (
        "Backpropagation may involve many steps so the gradient may decrease exponentially and "
        "since these gradients are responsible for the relation between sequences, for long "
        "term dependencies the gradient is too small hence a problem. This is known popularly "
        "as vanishing gradient problem."
    ),
    "rnn-lstm 1c": (
        "The above problem is solved by LSTM using forget, input and output gates. These gates "
        "control the flow of information among multiple layers and selectively retain crucial "
        "information and forget unnecessary useless info."
    ),
    "rnn-lstm 1d": (
        "Well, the forget gate can be set to nearly 1 allowing gradients to pass through "
        "multiple layers unchanged during backpropagation."
    ),
    "rnn-lstm 1e": (
        "ANN \\rightarrow product recommendation in e-commerce sites based on history.\n"
        "RNN \\rightarrow NLP (Predicting next word in short sentence)\n"
        "LSTM \\rightarrow NLP (Fill in the blank involving large sentences or paragraphs too)"
    ),
    "rnn-lstm 2a": (
        "a) long term dependency\n\nYes, I think RNN would struggle (if we keep window size small)"
    ),
    "rnn-lstm 2b": (
        "Memory cell is the cell state that contains the ~~old~~ information in flow which is "
        "being passed on ~~and~~ and gating mechanism has the ability to add input information "
        "as well as remove unnecessary info from this cell state. So any info that the gate "
        "thinks is important, is retained in the cell state over long sequences.\n\n"
        "Setting forget gate to zero means you don't want to remember anything from before for "
        "the next prediction. An example/case I can think of is when you have two completely "
        "different statements together we want forget gate to become zero at the full stop."
    ),
}

# What the seed answers say, item by item (the rest of each rubric they leave out).
SEED_MATCHED = {
    "normal-equation 1": {"linear", "least-squares", "predict"},
    "normal-equation 7": {"cost"},
    "backprop 1": {"passes", "local"},
    "update-rules 2": {"step", "too-large", "too-small"},
    "rnn-lstm 1a": {"sequence", "state"},
    "rnn-lstm 1b": {"product", "long-term"},
    "rnn-lstm 1c": {"gates"},
    "rnn-lstm 1d": {"unchanged"},
    "rnn-lstm 1e": {"ann", "sequences"},
    "rnn-lstm 2a": {"dependency", "struggles"},
    "rnn-lstm 2b": {"cell", "forget-zero"},
}

# Full answers in other words, other word forms and another order: full marks each.
GOOD = {
    "normal-equation 1": (
        "The model supposes that the target depends linearly on the features, i.e. the "
        "predictions are ŷ = Xβ. Training picks the coefficients β that minimize the sum of "
        "squared residuals (ordinary least squares). Once fitted, those coefficients are used to "
        "predict targets for new, unseen examples."
    ),
    "normal-equation 7": (
        "Forming XᵀX takes O(np²) operations and inverting it costs O(p³), which is far too slow "
        "when there are many features. Moreover XᵀX may be singular or badly conditioned, so "
        "solving it directly is numerically unstable. Gradient descent, especially its stochastic "
        "variant, scales to huge datasets that arrive as a stream, and it also works for models "
        "that have no closed-form solution."
    ),
    "backprop 1": (
        "Backprop is efficient because it reuses the gradients already computed for the layer "
        "above instead of recomputing them: the chain rule is applied layer by layer. A single "
        "forward pass stores every activation, and a single backward pass then gives the "
        "gradients of all parameters, so the cost is about the same as the forward computation, "
        "whereas numerical differentiation would need a separate pass for each weight. Each "
        "weight's gradient is just the error term (delta) of its layer multiplied by the input "
        "that the weight receives."
    ),
    "update-rules 2": (
        "The learning rate multiplies the gradient, so it sets how far each update moves against "
        "the gradient. If α is chosen too big, the updates overshoot the minimum, oscillate and "
        "can even diverge. With a very small α, training crawls: convergence takes many "
        "iterations or stalls."
    ),
    "rnn-lstm 1a": (
        "A feed-forward network sees the whole input at once and treats every input "
        "independently. A recurrent network instead reads the sequence one element at a time, "
        "carrying a hidden state from step to step that remembers earlier inputs, and it applies "
        "the same weight matrices at every time step."
    ),
    "rnn-lstm 1b": (
        "When an RNN is trained with backpropagation through time, the gradient is a product of "
        "many Jacobian factors, one per time step; if they are smaller than one, it shrinks "
        "exponentially the further back it travels. As a result, the network cannot learn "
        "dependencies between distant time steps."
    ),
    "rnn-lstm 1c": (
        "An LSTM adds a memory cell guarded by three gates: the forget gate decides what to keep, "
        "the input gate what to write and the output gate what to expose. Because the cell state "
        "is updated by addition rather than repeated multiplication, gradients get a path along "
        "which they do not shrink."
    ),
    "rnn-lstm 1d": (
        "Since c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t, the derivative ∂c_t/∂c_{t−1} equals f_t. When the "
        "forget gate stays close to one, this factor is ≈ 1 at every step, so the error signal "
        "flows back through many time steps almost unchanged instead of vanishing."
    ),
    "rnn-lstm 1e": (
        "A plain feed-forward network suits static tabular data, for example predicting house "
        "prices. A simple recurrent network can handle short sequences such as guessing the next "
        "word of a sentence. An LSTM is needed for long-range sequences such as machine "
        "translation or speech recognition."
    ),
    "rnn-lstm 2a": (
        "The missing word depends on “Ireland”, which appears many words earlier: this is a "
        "long-range dependency. A vanilla RNN would find this hard, because the gradient from the "
        "blank back to that early word vanishes over so many steps."
    ),
    "rnn-lstm 2b": (
        "The memory cell is a conveyor belt that carries information from one time step to the "
        "next, while the gates decide what to add to it and what to remove from it. A forget gate "
        "of 0 wipes the previous cell state completely, which is useful at the end of a sentence "
        "or when the topic changes."
    ),
}

# An answer that negates an item: (answer, the item that must not be matched).
NEGATED = {
    "normal-equation 1": ("The fitted β cannot be used to predict unseen inputs.", "predict"),
    "normal-equation 7": ("Inverting XᵀX is not expensive, even with many features.", "cost"),
    "backprop 1": (
        "Backprop does not reuse gradients in the chain rule; it recomputes each one from scratch.",
        "reuse",
    ),
    "update-rules 2": ("The learning rate does not control the step size.", "step"),
    "rnn-lstm 1a": ("An RNN does not keep a hidden state.", "state"),
    "rnn-lstm 1b": ("The gradients do not shrink when multiplied over many steps.", "product"),
    "rnn-lstm 1c": (
        "The LSTM does not use forget, input or output gates to control anything.",
        "gates",
    ),
    "rnn-lstm 1d": ("A forget gate near 1 does not let the gradient pass unchanged.", "unchanged"),
    "rnn-lstm 1e": ("An LSTM is never used for long documents or translation.", "sequences"),
    "rnn-lstm 2a": ("A vanilla RNN would not struggle with this sentence.", "struggles"),
    "rnn-lstm 2b": ("A forget gate of 0 does not erase the previous cell state.", "forget-zero"),
}

# Rubric words without the sentences that would make them an explanation.
KEYWORDS = {
    "normal-equation 1": (
        "linear relationship least squares minimise squared error predict unseen inputs"
    ),
    "normal-equation 7": (
        "inverse expensive O(p^3) many features singular ill-conditioned unstable scales huge data"
    ),
    "backprop 1": "chain rule reuse forward backward cache gradient",
    "update-rules 2": "step size scales gradient too large overshoot diverge too small slow stuck",
    "rnn-lstm 1a": "sequence step by step hidden state memory shared weights",
    "rnn-lstm 1b": "vanishing gradient exponential shrink long-term dependencies",
    "rnn-lstm 1c": "forget input output gates control additive cell state gradient path",
    "rnn-lstm 1d": "forget gate 1 derivative c_t f_t gradient unchanged",
    "rnn-lstm 1e": "ANN tabular RNN next word LSTM translation",
    "rnn-lstm 2a": "long-term dependency vanilla RNN struggles vanishing gradient",
    "rnn-lstm 2b": "cell state carries information gates add remove forget 0 erase previous",
}

# Short answers in the student's own phrasing: (question, answer, the items it earns).
MORE = [
    (
        "backprop 1",
        "Thanks to the chain rule, backprop avoids recomputing anything: the upstream error "
        "terms are stored and reused for the next layer down.",
        {"reuse"},
    ),
    (
        "backprop 1",
        "Unlike numerical differentiation, which needs one extra pass per parameter, "
        "backpropagation gets all gradients from one forward and one backward sweep.",
        {"passes"},
    ),
    (
        "normal-equation 7",
        "XᵀX is not invertible when features are collinear, and even when it is, the inversion "
        "costs O(p^3) which is prohibitive for thousands of features.",
        {"cost", "stability"},
    ),
    (
        "normal-equation 7",
        "With millions of samples the data does not fit in memory, so we use mini-batch SGD.",
        {"scale"},
    ),
    (
        "rnn-lstm 2b",
        "With f = 0 the cell forgets everything it stored so far. The cell state carries "
        "information along the sequence and the gates regulate what is written to it.",
        {"cell", "forget-zero"},
    ),
    (
        "rnn-lstm 1d",
        "Because ∂c_t/∂c_{t-1} = f_t and f_t ≈ 1, gradients survive many steps without vanishing.",
        {"derivative", "unchanged"},
    ),
    (
        "update-rules 2",
        "α decides how big a step we take along the negative gradient. Too high: we jump over "
        "the minimum and diverge. Too low: learning is painfully slow.",
        {"step", "too-large", "too-small"},
    ),
    (
        "rnn-lstm 1a",
        "RNNs process inputs sequentially and remember previous inputs through a hidden state; "
        "the weights are shared over time. ANNs process all inputs at once.",
        {"sequence", "state", "shared"},
    ),
    (
        "rnn-lstm 1b",
        "Gradients vanish exponentially in BPTT, so RNNs struggle to learn long-range "
        "dependencies.",
        {"product", "long-term"},
    ),
    (
        "rnn-lstm 1c",
        "LSTMs have an input gate, a forget gate and an output gate which regulate the "
        "information flow, and the cell state is a sum rather than a product so the gradient "
        "flows unchanged.",
        {"gates", "additive"},
    ),
    (
        "normal-equation 1",
        "We assume y is approximately a linear combination of the inputs plus noise; β is "
        "learnt by minimizing the mean squared error, and then used to forecast new data.",
        {"linear", "least-squares", "predict"},
    ),
]

OFF_TOPIC = (
    "My favourite football team won the cup last weekend, and afterwards we celebrated with "
    "pizza in the old town. The weather was lovely and the trains ran on time."
)

# Words for sentences that have nothing to do with any rubric (checked below).
UNRELATED_WORDS = (
    "the a my our garden was full of red tulips and we ate cake on sunday cat sleeps by "
    "window pottery festival tickets were cheap grandmother knits blue scarves in winter"
).split()


@pytest.fixture(scope="module")
def rubrics() -> dict[str, Rubric]:
    return {q: Rubric.from_spec(spec, where=f"test {q}") for q, spec in RUBRICS.items()}


def _matched(score: TextScore) -> set[str]:
    return {item.id for item in score.items if item.matched}


# --- the course's rubrics -------------------------------------------------------------------


def test_every_text_question_has_a_rubric_worth_its_points(rubrics: dict[str, Rubric]) -> None:
    assert set(rubrics) == set(QUESTION_POINTS)
    for question, rubric in rubrics.items():
        assert rubric.max_points == pytest.approx(QUESTION_POINTS[question]), question


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def test_rubrics_survive_toml(rubrics: dict[str, Rubric]) -> None:
    for question, spec in RUBRICS.items():
        lines = []
        for item in spec:
            lines.append("[[questions.rubric]]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in item.items())
        parsed = tomllib.loads("\n".join(lines))["questions"]["rubric"]
        assert Rubric.from_spec(parsed, where=question) == rubrics[question]


@pytest.mark.parametrize("question", list(SEED))
def test_seed_answer_matches_what_it_says(question: str, rubrics: dict[str, Rubric]) -> None:
    score = score_text(SEED[question], rubrics[question])
    assert _matched(score) == SEED_MATCHED[question]
    assert score.score >= score.max_score / 2
    for item in score.items:
        assert bool(item.evidence) or not item.matched
        assert item.points == (item.max_points if item.matched else 0.0)


def test_seed_normal_equation_7_is_cost_but_not_conditioning_nor_scale(
    rubrics: dict[str, Rubric],
) -> None:
    score = score_text(SEED["normal-equation 7"], rubrics["normal-equation 7"])
    by_id = {item.id: item for item in score.items}
    assert by_id["cost"].matched and "computationally expensive" in by_id["cost"].evidence
    assert not by_id["stability"].matched and not by_id["scale"].matched
    assert score.score == 1.0 and not score.needs_review


@pytest.mark.parametrize("question", list(GOOD))
def test_paraphrase_earns_full_marks(question: str, rubrics: dict[str, Rubric]) -> None:
    score = score_text(GOOD[question], rubrics[question])
    assert score.score == score.max_score, [(i.id, i.matched) for i in score.items]
    assert not score.needs_review


@pytest.mark.parametrize(("question", "answer", "items"), MORE)
def test_other_phrasings(
    question: str, answer: str, items: set[str], rubrics: dict[str, Rubric]
) -> None:
    assert _matched(score_text(answer, rubrics[question])) == items


@pytest.mark.parametrize("question", list(NEGATED))
def test_negated_item_is_not_matched(question: str, rubrics: dict[str, Rubric]) -> None:
    answer, item_id = NEGATED[question]
    score = score_text(answer, rubrics[question])
    item = next(i for i in score.items if i.id == item_id)
    assert not item.matched and item.points == 0.0
    assert score.score < score.max_score


def test_negation_flags_for_review_and_says_why(rubrics: dict[str, Rubric]) -> None:
    score = score_text(NEGATED["backprop 1"][0], rubrics["backprop 1"])
    reuse = score.items[0]
    assert reuse.confidence < REVIEW_BELOW and score.needs_review
    assert "does not reuse" in reuse.evidence
    assert any("negation" in note and "reuse" in note for note in score.notes)


@pytest.mark.parametrize("question", list(KEYWORDS))
def test_keyword_list_is_capped_and_flagged(question: str, rubrics: dict[str, Rubric]) -> None:
    score = score_text(KEYWORDS[question], rubrics[question])
    assert score.score <= score.max_score * KEYWORD_CREDIT
    assert score.needs_review
    assert any("list of keywords" in note for note in score.notes)


def test_keywords_on_separate_lines_are_a_list_too(rubrics: dict[str, Rubric]) -> None:
    answer = "- chain rule\n- reuse gradients\n- forward pass\n- backward pass\n- cache"
    score = score_text(answer, rubrics["backprop 1"])
    assert 0 < score.score < score.max_score and score.needs_review


@pytest.mark.parametrize("question", list(RUBRICS))
def test_off_topic_answer_scores_zero(question: str, rubrics: dict[str, Rubric]) -> None:
    score = score_text(OFF_TOPIC, rubrics[question])
    assert score.score == 0.0 and not _matched(score)


@pytest.mark.parametrize("answer", ["", "   \n", "Your answer here", "TODO", "...", "None"])
def test_empty_or_placeholder_scores_zero_without_review(
    answer: str, rubrics: dict[str, Rubric]
) -> None:
    score = score_text(answer, rubrics["backprop 1"])
    assert score.score == 0.0 and not score.needs_review
    assert score.notes == ("No answer was given.",)
    assert [i.max_points for i in score.items] == [1.0, 0.5, 0.5]


def test_details_for_the_report(rubrics: dict[str, Rubric]) -> None:
    score = score_text(SEED["normal-equation 7"], rubrics["normal-equation 7"])
    details = to_details(score)
    assert [type(d) for d in details] == [RubricMatch] * 3
    assert details[0].item == "cost" and details[0].matched and details[0].points == 1.0
    assert details[0].evidence == score.items[0].evidence
    assert details[1].to_json()["matched"] is False


# --- reading and matching details -----------------------------------------------------------


def _words(text: str) -> list[str]:
    return [t.word for t in tokenize(normalise(text)) if not t.separator]


@pytest.mark.parametrize(
    ("variants", "expected"),
    [
        (["XᵀX", "X^T X", "X^{T}X", "X'X", "X.T @ X", r"X^\top X"], "x transpose x"),
        (["(XᵀX)⁻¹", "(X^T X)^{-1}", "(X.T @ X)**-1", "(X^TX)^-1"], "x transpose x inverse"),
        (["O(p^3)", "O(p³)", "O(p**3)", "O(p^{3})"], "o p cubed"),
        (["f_t ≈ 1", r"$f_t \approx 1$", "f_t ~ 1"], "f t approx 1"),
        (["∂c_t/∂c_{t−1}", r"\frac{\partial c_t}{\partial c_{t-1}}"], "partial c t partial c t 1"),
        (["ŷ = Xβ", r"$\hat{y} = X\beta$", "y_hat = X*beta"], "yhat x beta"),
        (["a_1", "a1", "a_{1}"], "a 1"),
        (["minimise", "minimize", "MINIMISE"], "minimize"),
        (["long-term", "long term", "Long–term"], "long term"),
        (["doesn't", "does not", "doesnt"], "does not"),
        (["can't", "cannot", "can not"], "can not"),
    ],
)
def test_normalisation_unifies_forms(variants: list[str], expected: str) -> None:
    for variant in variants:
        assert " ".join(_words(variant)) == expected, variant


def test_sentences_split_on_stops_and_lines_not_on_abbreviations() -> None:
    text = (
        "Gradients shrink, e.g. in long sequences. Then what?\n"
        "a) short line\n- bullet point\n"
        "a long prose line that was wrapped by the editor in the middle of\n"
        "a sentence ends here; still the same sentence. ~~deleted~~ Kept 0.5 and 1.5."
    )
    assert split_sentences(text) == [
        "Gradients shrink, e.g. in long sequences.",
        "Then what?",
        "short line",
        "bullet point",
        "a long prose line that was wrapped by the editor in the middle of a sentence ends "
        "here; still the same sentence.",
        "Kept 0.5 and 1.5.",
    ]


def test_word_forms_and_prefixes_match() -> None:
    rubric = Rubric.from_spec(
        [{"id": "r", "points": 1, "description": "reuse", "concepts": ["reuse + recomput*"]}],
        where="test",
    )
    for answer in [
        "It reused them, which saved recomputing.",
        "Reusing avoids recomputation.",
        "recomputation is what reuses save",
    ]:
        assert score_text(answer, rubric).score == 1.0, answer


def _one_item(concepts: list[Any]) -> Rubric:
    spec = [{"id": "x", "points": 1, "description": "d", "concepts": concepts}]
    return Rubric.from_spec(spec, where="test")


@pytest.mark.parametrize(
    ("answer", "matched"),
    [
        ("It reuses the gradients.", True),
        ("It does not reuse the gradients.", False),
        ("It doesn't reuse gradients.", False),
        ("There is no reuse of gradients.", False),
        ("It never really reuses any gradients.", False),
        ("Instead of reusing gradients it recomputes them.", False),
        ("It not only reuses gradients but also stores them.", True),
        ("It does not recompute anything, it reuses the gradients.", True),
        ("It is not slow because it reuses gradients.", True),
    ],
)
def test_negation_reaches_only_its_own_clause(answer: str, matched: bool) -> None:
    score = score_text(answer, _one_item(["reus* + gradient*"]))
    assert score.items[0].matched is matched


@pytest.mark.parametrize(
    ("answer", "matched"),
    [
        ("XᵀX is not invertible when columns are collinear.", True),
        ("XᵀX can be non-invertible.", True),
        ("Inverting XᵀX is not expensive.", False),  # the "not" is about something else
        ("XᵀX is invertible.", False),
    ],
)
def test_a_negation_the_rubric_asks_for(answer: str, matched: bool) -> None:
    score = score_text(answer, _one_item(["not|non + invertible"]))
    assert score.items[0].matched is matched


def test_need_counts_concepts() -> None:
    spec = [
        {
            "id": "x",
            "points": 2,
            "description": "two of three",
            "concepts": ["forward + pass", "backward + pass", "all + gradients"],
            "need": 2,
        }
    ]
    rubric = Rubric.from_spec(spec, where="test")
    assert score_text("A forward pass, then a backward pass.", rubric).score == 2.0
    assert score_text("A forward pass only.", rubric).score == 0.0
    assert rubric.items[0].required == 2


def test_near_miss_is_flagged() -> None:
    spec = [
        {
            "id": "x",
            "points": 1,
            "description": "d",
            "concepts": ["chain rule", "reus* + upstream + gradient*"],
        }
    ]
    score = score_text(
        "The chain rule uses the upstream gradient.", Rubric.from_spec(spec, where="t")
    )
    assert not score.items[0].matched and score.needs_review
    assert "chain rule" in score.items[0].evidence


def _named(concepts: list[Any], names: list[str], **more: Any) -> Rubric:
    spec = [{"id": "x", "points": 1, "description": "d", "concepts": concepts, "names": names}]
    return Rubric.from_spec(spec + list(more.values()), where="test")


@pytest.mark.parametrize(
    ("answer", "matched"),
    [
        # the name's words do not count, alone or together
        ("The vanishing gradient problem is when gradients explode.", False),
        ("The vanishing-gradient problem is when gradients explode.", False),
        ("The vanishing gradients problem makes training hard.", False),
        ("This is the problem of vanishing gradients.", False),
        # the same words outside the name do, also in a sentence that names it
        ("The gradients vanish.", True),
        ("Vanishing gradients make training hard.", True),
        ("In the vanishing gradient problem the gradients vanish.", True),
        ("The vanishing gradient problem: the gradient vanishes over many steps.", True),
    ],
)
def test_a_names_words_do_not_count(answer: str, matched: bool) -> None:
    rubric = _named(
        ["gradient* + vanish*"], ["vanishing gradient* problem*", "problem* of vanishing gradient*"]
    )
    assert score_text(answer, rubric).items[0].matched is matched


@pytest.mark.parametrize(
    ("answer", "matched"),
    [
        ("A forget gate of 0 erases everything.", True),  # spelled out whole, the name counts
        ("The forget-gate value 0 erases the cell.", True),
        ("With f = 0 everything is erased.", True),
    ],
)
def test_a_synonym_that_spells_out_the_whole_name_finds_it(answer: str, matched: bool) -> None:
    rubric = _named(["forget gate*|f + 0 + eras*"], ["forget gate*"])
    assert score_text(answer, rubric).items[0].matched is matched


@pytest.mark.parametrize(
    ("synonym", "answer", "matched"),
    [
        ("vanishing gradient*", "Vanishing gradients slow training down.", True),
        ("vanishing gradient*", "The vanishing gradient problem slows training down.", False),
        ("vanishing gradient problem", "The vanishing gradient problem slows it down.", True),
        ("vanishing gradient problem in rnn", "The vanishing gradient problem in RNNs.", True),
    ],
)
def test_part_of_a_name_is_not_the_name(synonym: str, answer: str, matched: bool) -> None:
    rubric = _named([synonym], ["vanishing gradient* problem*"])
    assert score_text(answer, rubric).items[0].matched is matched


def test_names_belong_to_their_item() -> None:
    other = {"id": "y", "points": 1, "description": "d", "concepts": ["forget* + 0"]}
    rubric = _named(["forget* + 0"], ["forget gate*"], other=other)
    score = score_text("The forget gate is 0.", rubric)
    assert [item.matched for item in score.items] == [False, True]
    assert rubric.items[0].names == ("forget gate*",) and rubric.items[1].names == ()


def test_the_authoring_guide_example_loads() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "authoring.md").read_text()
    block = re.search(r"```toml\n(\s*)\[\[questions\.rubric\]\].*?```", guide, re.DOTALL)
    assert block is not None
    text = re.sub(rf"(?m)^{block[1]}", "", block[0].removeprefix("```toml").removesuffix("```"))
    rubric = Rubric.from_spec(tomllib.loads(text)["questions"]["rubric"], where="authoring.md")
    assert rubric.items[0].names
    wrong = "The vanishing gradient problem is when gradients explode, multiplying many factors."
    right = "The vanishing gradient problem: multiplying many Jacobians makes the gradient shrink."
    assert score_text(wrong, rubric).score == 0.0
    assert score_text(right, rubric).score == 1.0


# --- loading rubrics ------------------------------------------------------------------------


def _spec(**changes: Any) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"id": "cost", "points": 1, "description": "d", "concepts": ["a + b"]}
    item.update(changes)
    return [{k: v for k, v in item.items() if v is not None}]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"id": "cost"}, r"a rubric must be a list of items, got \{'id': 'cost'\}"),
        ([], r"got an empty list"),
        (["cost"], r"rubric item 1 must be a table, got 'cost'"),
        (_spec(id=""), r"id must be a short name like 'cost', got ''"),
        (_spec(points=0), r"\('cost'\): points must be a number > 0, got 0"),
        (_spec(points=True), r"points must be a number > 0, got True"),
        (_spec(points="1"), r"points must be a number > 0, got '1'"),
        (_spec(description=" "), r"description must be non-empty text, got ' '"),
        (_spec(concepts="a + b"), r"concepts must be a non-empty list of phrasings, got 'a \+ b'"),
        (_spec(concepts=[]), r"concepts must be a non-empty list of phrasings, got \[\]"),
        (_spec(concepts=[["a", 3]]), r"concept 1: a concept is a phrasing string or a list"),
        (_spec(concepts=["a + "]), r"concept 1: bad phrasing 'a \+ ': a '\+' has nothing"),
        (_spec(concepts=["a||b"]), r"bad phrasing 'a\|\|b': an empty synonym in 'a\|\|b'"),
        (_spec(concepts=["a + $$"]), r"synonym '\$\$': nothing left to match"),
        (_spec(concepts=["re*use"]), r"synonym 're\*use': '\*' may only end a word"),
        (_spec(need=2), r"need must be a whole number from 1 to 1 .*, got 2"),
        (_spec(need=1.5), r"need must be a whole number .*, got 1.5"),
        (_spec(weight=2), r"unknown keys \['weight'\]"),
        (_spec(names="forget gate"), r"names must be a list of phrases, got 'forget gate'"),
        (_spec(names=["forget gate", 3]), r"name 3: a name must be text"),
        (_spec(names=["forget"]), r"name 'forget': a name must have at least two words"),
        (_spec(names=["forget gate|f gate"]), r"name 'forget gate\|f gate': a name is one phrase"),
        (_spec(names=["$$ ()"]), r"name '\$\$ \(\)': nothing left to match"),
        (_spec(names=["for*get gate"]), r"'\*' may only end a word"),
        (_spec() + _spec(), r"rubric item ids must be unique, repeated: \['cost'\]"),
    ],
)
def test_bad_rubric_is_rejected_with_its_value(spec: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        Rubric.from_spec(spec, where="normal-equation.toml question 7")
    assert str(info.value).startswith("normal-equation.toml question 7: ")


def test_dataclasses_validate_when_built_in_python() -> None:
    concept = Concept.parse("c", ["a|b + c"])
    assert concept.phrasings == ((("a", "b"), ("c",)),)
    with pytest.raises(SpecError, match="needs at least one non-empty phrasing"):
        Concept(id="c", phrasings=())
    with pytest.raises(SpecError, match=r"points=-1 must be > 0"):
        RubricItem(id="i", description="d", points=-1, concepts=(concept,))
    with pytest.raises(SpecError, match=r"need=3 must be 0 \(all\) or between 1 and"):
        RubricItem(id="i", description="d", points=1, concepts=(concept,), need=3)
    with pytest.raises(SpecError, match="at least one item"):
        Rubric(items=())
    with pytest.raises(SpecError, match=r"item 'i', name 'gate': a name must have at least two"):
        RubricItem(id="i", description="d", points=1, concepts=(concept,), names=("gate",))


# --- properties -----------------------------------------------------------------------------

_FAST = settings(derandomize=True, max_examples=40, deadline=None)


def _key(score: TextScore) -> tuple[float, set[str]]:
    return score.score, _matched(score)


@_FAST
@given(data=st.data())
def test_sentence_order_does_not_matter(data: st.DataObject) -> None:
    question = data.draw(st.sampled_from(sorted(GOOD)))
    rubric = Rubric.from_spec(RUBRICS[question], where=question)
    sentences = split_sentences(GOOD[question])
    shuffled = data.draw(st.permutations(sentences))
    assert _key(score_text(" ".join(shuffled), rubric)) == _key(score_text(GOOD[question], rubric))


def test_unrelated_words_are_unrelated(rubrics: dict[str, Rubric]) -> None:
    def content(text: str) -> set[str]:
        return {t.stem for t in tokenize(normalise(text)) if t.word not in FUNCTION_WORDS}

    unrelated = content(" ".join(UNRELATED_WORDS))
    for rubric in rubrics.values():
        for item in rubric.items:
            for concept in item.concepts:
                for phrasing in concept.phrasings:
                    for term in phrasing:
                        for synonym in term:
                            assert not (content(synonym.rstrip("*")) & unrelated), synonym


@_FAST
@given(
    question=st.sampled_from(sorted(SEED)),
    source=st.sampled_from(["seed", "good", "keywords"]),
    extra=st.lists(st.sampled_from(UNRELATED_WORDS), min_size=1, max_size=12),
    position=st.integers(min_value=0, max_value=10),
)
def test_adding_an_unrelated_sentence_never_lowers_the_score(
    question: str, source: str, extra: list[str], position: int
) -> None:
    rubric = Rubric.from_spec(RUBRICS[question], where=question)
    answer = {"seed": SEED, "good": GOOD, "keywords": KEYWORDS}[source][question]
    sentences = split_sentences(answer)
    sentences.insert(min(position, len(sentences)), " ".join(extra).capitalize() + ".")
    before = score_text(answer, rubric)
    after = score_text(" ".join(sentences), rubric)
    assert after.score >= before.score
    assert _matched(after) >= _matched(before)


@_FAST
@given(data=st.data())
def test_letter_case_does_not_matter(data: st.DataObject) -> None:
    question = data.draw(st.sampled_from(sorted(GOOD)))
    source = data.draw(st.sampled_from([GOOD, NEGATED, KEYWORDS, SEED]))
    answer = source[question] if isinstance(source[question], str) else source[question][0]
    flips = data.draw(st.lists(st.booleans(), min_size=len(answer), max_size=len(answer)))
    # Only ASCII letters: LaTeX commands and Greek capitals are case-sensitive on purpose.
    changed = "".join(
        (c.swapcase() if flip and c.isascii() and c.isalpha() else c)
        for c, flip in zip(answer, flips, strict=True)
    )
    if "\\" in answer:
        changed = re.sub(r"\\[A-Za-z]+", lambda m: m[0].lower(), changed)
        answer = re.sub(r"\\[A-Za-z]+", lambda m: m[0].lower(), answer)
    rubric = Rubric.from_spec(RUBRICS[question], where=question)
    assert _key(score_text(changed, rubric)) == _key(score_text(answer, rubric))


@_FAST
@given(answer=st.text(max_size=300))
def test_any_text_scores_within_bounds_and_repeatably(answer: str) -> None:
    rubric = Rubric.from_spec(RUBRICS["backprop 1"], where="backprop 1")
    first = score_text(answer, rubric)
    assert 0.0 <= first.score <= first.max_score
    assert all(0.0 <= i.confidence <= 1.0 for i in first.items)
    assert score_text(answer, rubric) == first
    assert read_answer(answer) == read_answer(answer)


def test_the_documented_example_loads() -> None:
    doc = text_module.__doc__ or ""
    example = doc.split("::\n", 1)[1].split("\n\n", 1)[0]
    parsed = tomllib.loads(re.sub(r"(?m)^    ", "", example))["questions"]["rubric"]
    rubric = Rubric.from_spec(parsed, where="docstring")
    answer = "Inverting XᵀX costs O(p³), which is far too slow with many features."
    assert score_text(answer, rubric).score == 1.0
    assert score_text("Inverting XᵀX is cheap.", rubric).score == 0.0


_WORDISH = st.text(alphabet="abcdeginorstuz'-", min_size=1, max_size=30)


@_FAST
@given(
    words=st.lists(_WORDISH, min_size=1, max_size=12),
    prefix=st.text(alphabet="abcdeginorstuz", min_size=1, max_size=30),
)
def test_prefix_words_find_what_a_scan_of_every_token_finds(words: list[str], prefix: str) -> None:
    """The sentence's prefix index (and the scan beyond its length) agree with comparing the
    prefix with every token's word and stem, including "-is" prefixes that also meet "-iz"."""
    for sentence in read_answer(" ".join(words) + ", then " + " ".join(reversed(words))):
        for text in (prefix, prefix + "is"):
            (word,) = compile_synonym(text + "*")
            scanned = [k for k, token in enumerate(sentence.tokens) if _word_matches(word, token)]
            assert list(_starts(word, sentence)) == scanned
